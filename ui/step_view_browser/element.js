// The step view's element: the five steps of attention, the worked example and the heads of a
// layer, for any layer, head and query token of the trace it is sent, with no server round trip.
// Python (ui/step_view.py) sends one binary payload per run (viz/step_view.py documents the
// format); this receives it, builds the element's structure once per run shape, language and
// mode, and draws the view. Its methods live by job in view.js, picks.js, figures.js, charts.js
// and worked.js; ui/step_view.py joins those files before this one into one module.
//
// Plain JavaScript, no build step. Plotly.js is loaded only to save a chart as an image. Every
// user-typed string (a token) reaches the page through textContent, never as HTML.

class StepView {
  constructor(parent) {
    this.parent = parent;
    this.root = el("div", { class: "avi", tabindex: "0", "data-testid": "step-view" });
    parent.appendChild(this.root);
    this.trace = null; // {id, header, weights[], strips[], layers: Map(layer -> arrays)}
    this.view = null; // {layer, head, query, step}: the header's view_fields
    this.revision = null;
    this.signature = null;
    this.charts = {}; // name -> the chart's div
    this.heatmaps = {}; // name -> its HeatmapChart
    this.reportTimer = null;
    this.asked = new Set(); // layers asked of the server for this trace
    this.pendingHover = null;
    this.cell = null; // the (query, key) cell that the hover links across the steps
    this.picked = new Set(); // tokens chosen in the strip and the grid (positions, 0-based)
    this.pickMode = "queries"; // the chosen tokens as queries (where they look) or as keys (who looks at them)
    this.pickBars = []; // the strip's and the grid's token pickers, kept alike
    this.onKey = (event) => this.key(event);
  }

  // A payload arrived (a new run, or a layer the browser asked for).
  receive(bytes, setStateValue) {
    this.setStateValue = setStateValue;
    const { header, arrays, signature } = decode(bytes);
    if (signature === this.signature) return; // the same run re-sent: nothing to draw
    this.signature = signature;
    this.runs = (this.runs || 0) + 1; // tests and the benchmark tell payloads apart by this
    this.root.dataset.run = String(this.runs);
    delete this.root.dataset.ready;
    delete this.root.dataset.complete;
    if (!this.trace || this.trace.id !== header.id) {
      this.trace = { id: header.id, weights: null, strips: null, layers: new Map() };
      this.asked = new Set();
      this.cell = null;
    }
    const trace = this.trace;
    trace.header = header;
    // Cross-attention's queries and keys are different tokens: no picking of tokens as both.
    this.root.dataset.cross = String(Boolean(header.cross));
    if (header.cross) this.picked = new Set();
    if (header.base) {
      trace.weights = [];
      trace.strips = [];
      for (let l = 0; l < header.n_layers; l++) {
        trace.weights.push(arrays[`layer${l}.weights`]);
        trace.strips.push(arrays[`strip${l}`]);
      }
      trace.mask = arrays.mask || null;
    }
    for (const l of header.layers) {
      const layer = {};
      for (const name of header.step_arrays) layer[name] = arrays[`layer${l}.${name}`];
      trace.layers.set(l, layer);
    }
    if (this.view === null) {
      // A new element (a new page, or the step view back after an empty sentence): the address
      // bar holds the latest view, the server's link or this page's own last change.
      this.view = { ...header.view, ...viewInAddress(header.view_fields) };
      this.revision = header.revision;
    } else if (header.revision !== this.revision) {
      this.view = { ...header.view }; // the server moved the view ("Open in the step view")
      this.revision = header.revision;
    }
    this.clampView();
    if (!trace.weights) {
      this.ask(this.view.layer, true); // a browser that lost what it held (a reload of the element)
      return;
    }
    this.build();
    this.draw();
  }


  ask(layer, base = false) {
    if (!base && this.asked.has(layer)) return;
    this.asked.add(layer);
    this.setStateValue("need", { trace: this.trace.id, layer, base });
  }

  // --- structure: built once per run shape, language and mode ---------------------------------

  build() {
    const h = this.trace.header;
    // A new sentence on the same model keeps every element: its charts are updated in place.
    const shape = JSON.stringify([h.n_layers, h.n_heads, h.strings, h.style, h.masked]);
    if (shape === this.shape) return this.refresh();
    this.shape = shape;
    const t = h.strings;
    const present = h.style.present;
    this.root.replaceChildren();
    this.root.classList.toggle("avi-present", present);
    this.root.style.setProperty("--avi-font", `${h.style.font_size}px`);

    const pickers = el("div", { class: "avi-pickers" });
    this.layerGroup = this.radioGroup(t.layer, h.n_layers, (i) => this.setView({ layer: i }));
    this.headGroup = this.radioGroup(t.head, h.n_heads, (i) => this.setView({ head: i }));
    pickers.append(this.layerGroup, this.headGroup);
    if (present) {
      this.prev = el("button", { type: "button", class: "avi-button", text: t.present_prev });
      this.next = el("button", { type: "button", class: "avi-button", text: t.present_next });
      this.prev.addEventListener("click", () => this.setView({ step: this.view.step - 1 }));
      this.next.addEventListener("click", () => this.setView({ step: this.view.step + 1 }));
      this.position = el("span", { class: "avi-position" });
      pickers.append(el("div", { class: "avi-steps" }, this.prev, this.next, this.position));
    } else {
      this.root.append(el("h2", { text: t.inspect }));
    }
    this.root.append(pickers);
    if (!present) this.root.append(el("p", { class: "avi-hint avi-keys", text: t.step_view_keys }), el("p", { class: "avi-hint avi-touch", text: t.step_view_touch }));
    this.status = el("p", { class: "avi-status", role: "status" });
    this.live = el("p", { class: "avi-live", "aria-live": "polite" }); // ViewState.announce
    this.root.append(this.status, this.live);

    this.sections = {};
    this.pickBars = [];
    this.charts = {};
    this.heatmaps = {};
    this.formulas = {};
    this.tables = {};
    const titles = {
      qkv: [t.step_qkv, t.step_qkv_text],
      scores: [t.step_scores, t.step_scores_text],
      scaled: [t.step_scaled, t.step_scaled_text],
      weights: [t.step_weights, t.step_weights_text],
      context: [t.step_context, t.step_context_text],
    };
    for (const step of h.steps) {
      const section = el("section", { class: `avi-section avi-${step}`, "data-step": step });
      this.sections[step] = section;
      this.root.append(section);
      if (step in titles) {
        const chart = this.chart(step, t);
        this.formulas[step] = el("div", { class: "avi-formula" });
        new ResizeObserver(() => fitFormula(this.formulas[step])).observe(this.formulas[step]);
        const [heading, text] = titles[step];
        const side = el("div", { class: "avi-side" }, this.formulas[step], el("p", { text }));
        section.append(el("h3", { text: heading }));
        if (step === "qkv" || present) section.append(side, chart);
        else section.append(el("div", { class: "avi-row" }, side, chart));
        section.append(this.tableToggle(step, t));
        if (step === "scaled" && h.masked) this.root.append(this.buildMask(t, present));
      } else if (step === "worked") {
        this.buildWorked(section, t);
      } else {
        this.heading = el("h3");
        const chart = this.chart("heads", t);
        section.append(this.heading, el("p", { text: t.heads_layer_text }), this.tokenBar(t), chart, this.tableToggle("heads", t));
      }
    }
    // Below the steps (not in presentation mode): every layer and head at once, to pick from.
    this.gridNote = null;
    if (!present) {
      this.gridNote = el("p", { class: "avi-hint" });
      const text = el("p", { text: fill(t.heads_grid_text, { layers: h.n_layers, heads: h.n_heads }) });
      const section = el("section", { class: "avi-section avi-overview", "data-part": "grid" });
      section.append(el("h3", { text: t.heads_grid }), text, this.gridNote, this.tokenBar(t), this.chart("grid", t, t.heads_grid), this.tableToggle("grid", t));
      this.root.append(section);
    }
    this.tokens = null;
    this.refresh();
  }

  // What changes with the sentence but not the layout: the formulas' sizes, the query picker.
  refresh() {
    const h = this.trace.header;
    for (const [step, holder] of Object.entries(this.formulas)) {
      holder.replaceChildren(formula(step, h));
      fitFormula(holder);
    }
    if (this.gridNote) this.gridNote.textContent = h.grid_block > 1 ? fill(h.strings.heads_grid_pooled, { block: h.grid_block }) : "";
    const tokens = JSON.stringify(h.tokens);
    if (tokens === this.tokens) return this.syncPicks();
    this.tokens = tokens;
    this.querySelect.replaceChildren(...h.tokens.map((token, i) => el("option", { value: String(i), text: `${i + 1} · ${token}` })));
    this.picked = new Set(); // positions of another sentence
    for (const { chips } of this.pickBars) {
      chips.replaceChildren(
        ...h.tokens.map((token, i) => {
          const chip = el("button", { type: "button", class: "avi-chip", "aria-pressed": "false", "data-token": String(i), text: `${i + 1} · ${token}` });
          chip.addEventListener("click", () => this.togglePick(i));
          return chip;
        }),
      );
    }
    this.syncPicks();
  }

  // The causal mask as a step of its own, after step 3 (a run with a mask): M, 0 where a query may
  // look and −∞ (marked) where it may not. Not a step of the view: presentation mode shows it with
  // step 3.
  buildMask(t, present) {
    const section = el("section", { class: "avi-section avi-mask", "data-part": "mask" });
    this.sections.mask = section;
    const chart = this.chart("mask", t);
    const holder = el("div", { class: "avi-formula" });
    this.formulas.mask = holder;
    new ResizeObserver(() => fitFormula(holder)).observe(holder); // this one, not a later run's
    const side = el("div", { class: "avi-side" }, holder, el("p", { text: t.step_mask_text }));
    section.append(el("h3", { text: t.step_mask }));
    if (present) section.append(side, chart);
    else section.append(el("div", { class: "avi-row" }, side, chart));
    section.append(this.tableToggle("mask", t));
    return section;
  }

  radioGroup(label, count, pick) {
    const group = el("div", { class: "avi-radios", role: "radiogroup", "aria-label": label });
    group.append(el("span", { class: "avi-label", text: label }));
    const name = `avi-${label}-${Math.random().toString(36).slice(2)}`;
    for (let i = 0; i < count; i++) {
      const input = el("input", { type: "radio", name, value: String(i) });
      input.addEventListener("change", () => input.checked && pick(i));
      group.append(el("label", { class: "avi-radio" }, input, el("span", { text: String(i + 1) })));
    }
    return group;
  }

  // --- drawing ----------------------------------------------------------------------------------

  draw() {
    // The theme first, while the page's styles are clean: read after the changes below, it would
    // make the browser recompute the styles of the whole page.
    const style = getComputedStyle(this.root);
    this.theme = {
      color: style.getPropertyValue("--st-text-color").trim() || "#31333f",
      background: style.getPropertyValue("--st-background-color").trim() || "#fff",
      family: style.getPropertyValue("--st-font").trim(),
    };
    const h = this.trace.header;
    const t = h.strings;
    const v = this.view;
    for (const [group, value] of [
      [this.layerGroup, v.layer],
      [this.headGroup, v.head],
    ]) {
      group.querySelectorAll("input").forEach((input) => (input.checked = Number(input.value) === value));
    }
    if (this.querySelect) this.querySelect.value = String(v.query);
    if (h.style.present) {
      h.steps.forEach((step, i) => (this.sections[step].hidden = i !== v.step));
      this.prev.disabled = v.step === 0;
      this.next.disabled = v.step === h.steps.length - 1;
      this.position.textContent = fill(t.present_position, { step: v.step + 1, total: h.steps.length });
    }
    // The causal mask's step (a run with a mask), beside step 3 in presentation mode.
    if (this.sections.mask) this.sections.mask.hidden = h.style.present && h.steps[v.step] !== "scaled";
    this.heading.textContent = fill(t.heads_layer, { layer: v.layer + 1 });
    this.heatmaps.heads.label = this.heading.textContent; // the strip's name: its figure has no title
    for (const name of h.view_fields) this.root.dataset[name] = String(v[name]);

    const layer = this.trace.layers.get(v.layer);
    if (!layer) {
      this.status.textContent = t.step_view_loading;
      this.root.dataset.ready = "loading";
      this.ask(v.layer);
    } else {
      this.status.textContent = "";
    }
    if (layer) this.drawWorked(layer);
    else this.worked.replaceChildren();
    this.drawCharts(layer);
  }
}

Object.assign(StepView.prototype, ViewState, TokenPicks, ChartFigures, TileCharts, ChartDrawing, WorkedExample, ChartTables);

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let stepView = parentElement.__stepView;
  if (!stepView || !stepView.root.isConnected) {
    stepView = new StepView(parentElement);
    parentElement.__stepView = stepView;
  }
  document.addEventListener("keydown", stepView.onKey);
  try {
    if (data) stepView.receive(data, setStateValue);
  } catch (error) {
    stepView.root.replaceChildren(el("p", { class: "avi-status", text: String(error) }));
    stepView.root.dataset.ready = "error";
  }
  return () => document.removeEventListener("keydown", stepView.onKey);
}
