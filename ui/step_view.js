// The step view in the browser: the five steps of attention, the worked example and the heads
// of a layer, for any layer, head and query token of the trace it is sent, with no server round
// trip. Python (ui/step_view.py) sends one binary payload per run (viz/step_view.py documents the
// format); a change of layer, head, query or step, the linked hover and the keys are handled here.
// The address bar follows at once (history.replaceState) and the server is told the view a
// moment later (setStateValue, debounced), so a shared link opens the same view.
//
// Plain JavaScript, no build step. The element's module is ui/heatmap.js (HeatmapChart, which
// draws the charts) followed by this file: ui/step_view.py joins them. Plotly.js is loaded only to
// save a chart as an image. Every user-typed string (a token) reaches the page through textContent,
// never as HTML.

const STEPS = ["qkv", "scores", "scaled", "weights", "context", "worked", "heads"];
const MATRICES = ["scores", "scaled", "weights"];
const SCROLL_ABOVE_ROWS = 16; // longer worked-example tables scroll, with the sums kept in view
const REPORT_DELAY_MS = 400; // the server hears of a view once the clicks stop (header.report_ms)
const MATHML = "http://www.w3.org/1998/Math/MathML";

let plotlyLoading = null;

function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no Plotly")));
      script.onerror = () => {
        plotlyLoading = null;
        reject(new Error(`could not load ${url}`));
      };
      document.head.appendChild(script);
    });
  }
  return plotlyLoading;
}

// --- the payload ---------------------------------------------------------------------------

function decode(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "AVI1") throw new Error(`not a step view payload (${magic})`);
  const length = view.getUint32(4, true);
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + length));
  const header = JSON.parse(headerText);
  const body = bytes.slice(8 + length).buffer; // a copy of its own, so every array is aligned
  const arrays = {};
  for (const entry of header.arrays) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const Type = entry.dtype === "u1" ? Uint8Array : Float32Array;
    arrays[entry.name] = { data: new Type(body, entry.offset, count), shape: entry.shape };
  }
  return { header, arrays, signature: `${headerText.length}:${bytes.byteLength}:${headerText}` };
}

// rows of a 2-D slice [index] of a (a, rows, columns) array, as views (no copy)
function rowsOf(array, index) {
  const [, rows, columns] = array.shape.length === 3 ? array.shape : [1, ...array.shape];
  const start = index * rows * columns;
  const out = [];
  for (let r = 0; r < rows; r++) out.push(array.data.subarray(start + r * columns, start + (r + 1) * columns));
  return out;
}

// --- numbers as the page prints them ------------------------------------------------------

// viz.style.number_text: fixed decimals rounded as Python's round() does (to the nearest, ties to
// even, on the exact binary value), no sign on a zero, and −∞ for a masked score.
function numberText(value, decimals) {
  if (value === -Infinity) return "−∞";
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e21) return value.toFixed(decimals);
  const exact = magnitude.toFixed(100); // every digit of the binary value (a float32 needs far fewer)
  const point = exact.indexOf(".");
  const digits = (exact.slice(0, point) + exact.slice(point + 1, point + 1 + decimals)).split("").map(Number);
  const next = Number(exact[point + 1 + decimals]);
  const rest = exact.slice(point + 2 + decimals);
  const tie = next === 5 && !/[1-9]/.test(rest);
  const up = next > 5 || (next === 5 && !tie) || (tie && digits[digits.length - 1] % 2 === 1);
  if (up) {
    let i = digits.length - 1;
    while (i >= 0 && digits[i] === 9) digits[i--] = 0;
    if (i >= 0) digits[i] += 1;
    else digits.unshift(1);
  }
  const whole = digits.slice(0, digits.length - decimals).join("") || "0";
  const fraction = digits.slice(digits.length - decimals).join("");
  const text = decimals ? `${whole}.${fraction}` : whole;
  const zero = !/[1-9]/.test(text);
  return value < 0 && !zero ? `-${text}` : text;
}

function fill(template, values) {
  return template.replace(/\{(\w+)(?::\.(\d+)f)?\}/g, (match, name, decimals) => {
    if (!(name in values)) return match;
    const value = values[name];
    return decimals === undefined ? String(value) : Number(value).toFixed(Number(decimals));
  });
}

// layer, head, query and step from the address bar, 0-based; only those that are whole numbers
function viewInAddress() {
  const params = new URLSearchParams(window.location.search);
  const view = {};
  for (const name of ["layer", "head", "query", "step"]) {
    const value = Number(params.get(name));
    if (params.has(name) && Number.isInteger(value) && value >= 1) view[name] = value - 1;
  }
  return view;
}

// --- DOM helpers -----------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function m(tag, ...children) {
  const node = document.createElementNS(MATHML, tag);
  for (const child of children) node.append(child);
  return node;
}
const mi = (text) => m("mi", text);
const mo = (text) => m("mo", text);
const mn = (text) => m("mn", text);
const row = (...children) => m("mrow", ...children);
const sup = (base, power) => m("msup", base, power);
const sub = (base, index) => m("msub", base, index);
const frac = (top, bottom) => m("mfrac", top, bottom);
const math = (...children) => {
  const node = m("math", ...children);
  node.setAttribute("display", "block");
  return node;
};
const kt = () => sup(mi("K"), mo("⊤"));
const tilde = (x) => {
  const node = m("mover", mi(x), mo("~"));
  node.setAttribute("accent", "true");
  return node;
};

// The formula beside each step, as MathML (drawn by the browser itself).
function formula(step, h) {
  const sqrt = Math.sqrt(h.d_head);
  switch (step) {
    case "qkv":
      return math(
        ...["Q", "K", "V"].flatMap((name, i) => [
          ...(i ? [mo(","), m("mspace")] : []),
          mi(name),
          mo("="),
          mi("X"),
          sup(mi("W"), mi(name)),
        ]),
        m("mspace"),
        mo("("),
        mn(String(h.tokens.length)),
        mo("×"),
        mn(String(h.d_head)),
        mo(")"),
      );
    case "scores":
      return math(mi("S"), mo("="), mi("Q"), kt());
    case "scaled":
      return math(
        tilde("S"),
        mo("="),
        frac(row(mi("Q"), kt()), m("msqrt", sub(mi("d"), mi("k")))),
        mo("="),
        frac(mi("S"), m("msqrt", mn(String(h.d_head)))),
        mo("="),
        frac(mi("S"), mn(sqrt.toFixed(3))),
      );
    case "weights": {
      const s = (i) => sub(tilde("S"), i);
      return math(
        sub(mi("A"), row(mi("i"), mi("j"))),
        mo("="),
        row(mi("softmax"), mo("("), s(mi("i")), sub(mo(")"), mi("j"))),
        mo("="),
        frac(sup(mi("e"), s(row(mi("i"), mi("j")))), row(m("munder", mo("∑"), mi("m")), sup(mi("e"), s(row(mi("i"), mi("m")))))),
      );
    }
    case "context":
      return math(
        mi("Z"),
        mo("="),
        mi("A"),
        mi("V"),
        mo(","),
        m("mspace"),
        sub(mi("z"), mi("i")),
        mo("="),
        m("munder", mo("∑"), mi("j")),
        sub(mi("A"), row(mi("i"), mi("j"))),
        sub(mi("v"), mi("j")),
      );
    default:
      return null;
  }
}

// --- the element -------------------------------------------------------------------------------

class StepView {
  constructor(parent) {
    this.parent = parent;
    this.root = el("div", { class: "avi", tabindex: "0", "data-testid": "step-view" });
    parent.appendChild(this.root);
    this.trace = null; // {id, header, weights[], strips[], layers: Map(layer -> arrays)}
    this.view = null; // {layer, head, query, step}
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
      for (const name of ["q", "k", "v", "scores", "scaled_scores", "context"]) layer[name] = arrays[`layer${l}.${name}`];
      trace.layers.set(l, layer);
    }
    if (this.view === null) {
      // A new element (a new page, or the step view back after an empty sentence): the address
      // bar holds the latest view, the server's link or this page's own last change.
      this.view = { ...header.view, ...viewInAddress() };
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

  clampView() {
    const h = this.trace.header;
    const v = this.view;
    v.layer = Math.max(0, Math.min(v.layer, h.n_layers - 1));
    v.head = Math.max(0, Math.min(v.head, h.n_heads - 1));
    v.query = Math.max(0, Math.min(v.query, h.tokens.length - 1));
    v.step = Math.max(0, Math.min(v.step, STEPS.length - 1));
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
    const shape = JSON.stringify([h.n_layers, h.n_heads, h.strings, h.style]);
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
      this.root.append(el("h3", { text: t.inspect }));
    }
    this.root.append(pickers);
    if (!present) this.root.append(el("p", { class: "avi-hint", text: t.step_view_keys }));
    this.status = el("p", { class: "avi-status", role: "status" });
    this.root.append(this.status);

    this.sections = {};
    this.pickBars = [];
    this.charts = {};
    this.heatmaps = {};
    this.formulas = {};
    const titles = {
      qkv: [t.step_qkv, t.step_qkv_text],
      scores: [t.step_scores, t.step_scores_text],
      scaled: [t.step_scaled, t.step_scaled_text],
      weights: [t.step_weights, t.step_weights_text],
      context: [t.step_context, t.step_context_text],
    };
    for (const step of STEPS) {
      const section = el("section", { class: `avi-section avi-${step}`, "data-step": step });
      this.sections[step] = section;
      this.root.append(section);
      if (step in titles) {
        const chart = this.chart(step, t);
        this.formulas[step] = el("div", { class: "avi-formula" });
        const [heading, text] = titles[step];
        const side = el("div", { class: "avi-side" }, this.formulas[step], el("p", { text }));
        section.append(el("h4", { text: heading }));
        if (step === "qkv" || present) section.append(side, chart);
        else section.append(el("div", { class: "avi-row" }, side, chart));
      } else if (step === "worked") {
        this.buildWorked(section, t);
      } else {
        this.heading = el("h4");
        const chart = this.chart("heads", t);
        section.append(this.heading, el("p", { text: t.heads_layer_text }), this.tokenBar(t), chart);
      }
    }
    // Below the steps (not in presentation mode): every layer and head at once, to pick from.
    this.gridNote = null;
    if (!present) {
      this.gridNote = el("p", { class: "avi-hint" });
      const text = el("p", { text: fill(t.heads_grid_text, { layers: h.n_layers, heads: h.n_heads }) });
      const section = el("section", { class: "avi-section avi-overview", "data-part": "grid" });
      section.append(el("h4", { text: t.heads_grid }), text, this.gridNote, this.tokenBar(t), this.chart("grid", t));
      this.root.append(section);
    }
    this.tokens = null;
    this.refresh();
  }

  // What changes with the sentence but not the layout: the formulas' sizes, the query picker.
  refresh() {
    const h = this.trace.header;
    for (const [step, holder] of Object.entries(this.formulas)) holder.replaceChildren(formula(step, h));
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

  // --- several tokens at once, in the strip and the grid --------------------------------------------

  // A picker of tokens for the strip or the grid: a chip per token, whether they are the queries or
  // the keys, and Clear. Both pickers show one choice.
  tokenBar(t) {
    const chips = el("div", { class: "avi-chips", role: "group", "aria-label": t.pick_tokens });
    const mode = el("div", { class: "avi-radios", role: "radiogroup", "aria-label": `${t.pick_tokens}: ${t.pick_as_queries} / ${t.pick_as_keys}` });
    const name = `avi-pick-${Math.random().toString(36).slice(2)}`;
    for (const [value, label] of [
      ["queries", t.pick_as_queries],
      ["keys", t.pick_as_keys],
    ]) {
      const input = el("input", { type: "radio", name, value });
      input.addEventListener("change", () => input.checked && this.setPicks(this.picked, value));
      mode.append(el("label", { class: "avi-radio" }, input, el("span", { text: label })));
    }
    const clear = el("button", { type: "button", class: "avi-button avi-pick-clear", text: t.pick_clear });
    clear.addEventListener("click", () => this.setPicks(new Set(), this.pickMode));
    const hint = el("p", { class: "avi-hint" });
    const bar = el("div", { class: "avi-pick" }, el("span", { class: "avi-label", text: t.pick_tokens }), chips, el("div", { class: "avi-pick-row" }, mode, clear), hint);
    this.pickBars.push({ chips, mode, clear, hint });
    return bar;
  }

  togglePick(position) {
    const picked = new Set(this.picked);
    if (!picked.delete(position)) picked.add(position);
    this.setPicks(picked, this.pickMode);
  }

  setPicks(picked, mode) {
    this.picked = picked;
    this.pickMode = mode;
    this.syncPicks();
    this.draw();
  }

  syncPicks() {
    const t = this.trace.header.strings;
    for (const { chips, mode, clear, hint } of this.pickBars) {
      chips.querySelectorAll(".avi-chip").forEach((chip) => chip.setAttribute("aria-pressed", String(this.picked.has(Number(chip.dataset.token)))));
      mode.querySelectorAll("input").forEach((input) => (input.checked = input.value === this.pickMode));
      clear.disabled = this.picked.size === 0;
      const said = this.pickMode === "queries" ? t.pick_queries_hint : t.pick_keys_hint;
      hint.textContent = this.picked.size ? said : "";
    }
  }

  // The choice as text ("queries:0,2"), or "" with nothing chosen: what a strip or grid drawn shows.
  pickKey() {
    return this.picked.size ? `${this.pickMode}:${[...this.picked].sort((a, b) => a - b).join(",")}` : "";
  }

  // One layer's tiles with only the chosen tokens' rows (queries) or columns (keys), pooled into the
  // grid's blocks as viz.grid.pool_blocks pools (the mean of the cells kept): shaped as a strip.
  pickedStrip(layer) {
    const h = this.trace.header;
    const weights = this.trace.weights[layer];
    const [heads, n] = weights.shape;
    const block = h.grid_block;
    const m = Math.ceil(n / block);
    const stride = m + h.grid_gap;
    const width = heads * stride - h.grid_gap;
    const sums = new Float64Array(m * width);
    const counts = new Uint32Array(m * width);
    const queries = this.pickMode === "queries";
    for (let head = 0; head < heads; head++) {
      const rows = rowsOf(weights, head);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (!this.picked.has(queries ? i : j)) continue;
          const at = Math.floor(i / block) * width + head * stride + Math.floor(j / block);
          sums[at] += rows[i][j];
          counts[at] += 1;
        }
      }
    }
    const data = Float32Array.from(sums, (sum, at) => (counts[at] ? sum / counts[at] : NaN));
    return { data, shape: [m, width] };
  }

  // Per head of `layer`, the caption of its tile for the tokens chosen: the key they look at most
  // together and their mean weight on it ("→ cat 0.61"), or the query that looks at them most and its
  // weight on them together ("sat → 0.45"), as encoder.analysis.selected_attention computes them.
  pickedCaptions(layer) {
    const h = this.trace.header;
    const weights = this.trace.weights[layer];
    const [heads, n] = weights.shape;
    const picked = [...this.picked];
    const queries = this.pickMode === "queries";
    return Array.from({ length: heads }, (_, head) => {
      const rows = rowsOf(weights, head);
      let best = 0;
      let top = -Infinity;
      for (let other = 0; other < n; other++) {
        let value = 0;
        for (const p of picked) value += queries ? rows[p][other] : rows[other][p];
        if (queries) value /= picked.length;
        if (value > top) [best, top] = [other, value];
      }
      const token = h.labels[best];
      return queries ? `→ ${token} ${numberText(top, 2)}` : `${token} → ${numberText(top, 2)}`;
    });
  }

  // One chart's box and its HeatmapChart: hovering a cell of any chart but the strip outlines the
  // cells it is linked to, and clicking a cell of a score or softmax map picks its query.
  chart(name, t) {
    const div = el("div", { class: "avi-chart", "data-chart": name });
    this.charts[name] = div;
    this.heatmaps[name] = new HeatmapChart(div, {
      numberText,
      downloadLabel: t.download_chart,
      onHover: name === "heads" || name === "grid" ? null : (point) => this.hover(point),
      onClick: {
        heads: (hit) => this.pickTile(this.view.layer, hit.column),
        grid: (hit) => this.pickTile(hit.row, hit.column, true),
        ...Object.fromEntries(MATRICES.map((matrix) => [matrix, (hit) => this.setView({ query: hit.row })])),
      }[name],
      onDownload: (figure) => this.download(name, figure),
    });
    return div;
  }

  // A click on a tile of the strip or the grid opens its head (`row` and `column` are cells of the
  // tiled array; the strip has one row of tiles). From the grid, the page goes up to the steps.
  pickTile(row, column, fromGrid = false) {
    const stride = this.tileStride();
    this.setView({ layer: fromGrid ? Math.floor(row / stride) : row, head: Math.floor(column / stride) });
    if (fromGrid) this.sections.qkv.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  tileStride() {
    const h = this.trace.header;
    return Math.ceil(h.tokens.length / h.grid_block) + h.grid_gap;
  }

  // A chart saved as an image by Plotly, from the figure on screen, named and sized as the
  // sidebar's export settings say.
  download(name, figure) {
    const h = this.trace.header;
    const options = h.config.toImageButtonOptions;
    const v = this.view;
    const where = `L${v.layer + 1}H${v.head + 1}`;
    const filename = name === "heads" ? `heads_layer${v.layer + 1}` : `${name === "qkv" ? "QKV" : name}_${where}`;
    const div = this.charts[name];
    const layout = { ...figure.layout, shapes: [], width: div.clientWidth, height: div.clientHeight };
    loadPlotly(h.plotly_url).then(
      (Plotly) => Plotly.downloadImage({ data: figure.data, layout }, { ...options, filename, width: layout.width, height: layout.height }),
      () => (this.status.textContent = h.strings.step_view_no_plotly),
    );
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

  buildWorked(section, t) {
    section.append(el("h4", { text: t.worked_example }));
    const select = el("select", { class: "avi-query", "aria-label": t.worked_query });
    select.addEventListener("change", () => this.setView({ query: Number(select.value) }));
    this.querySelect = select;
    section.append(el("label", { class: "avi-query-label" }, el("span", { text: t.worked_query }), select));
    this.worked = el("div", { class: "avi-worked" });
    section.append(this.worked);
  }

  // --- the view ----------------------------------------------------------------------------------

  setView(change) {
    const before = JSON.stringify(this.view);
    Object.assign(this.view, change);
    this.clampView();
    if (JSON.stringify(this.view) === before) return;
    this.draw();
    this.remember();
  }

  // The address bar right after the frame that shows the view (history.replaceState takes a few
  // milliseconds a call, which the click should not wait for); the server a moment later, when
  // the clicks stop.
  remember() {
    const v = { ...this.view };
    if (!this.addressFrame) {
      this.addressFrame = requestAnimationFrame(() =>
        setTimeout(() => {
          this.addressFrame = null;
          this.writeAddress(this.view);
        }, 0),
      );
    }
    clearTimeout(this.reportTimer);
    const delay = this.trace?.header?.report_ms ?? REPORT_DELAY_MS;
    this.reportTimer = setTimeout(() => this.setStateValue("view", v), delay);
  }

  writeAddress(v) {
    const url = new URL(window.location.href);
    url.searchParams.set("layer", String(v.layer + 1));
    url.searchParams.set("head", String(v.head + 1));
    url.searchParams.set("query", String(v.query + 1));
    if (this.trace.header.style.present || url.searchParams.has("step")) url.searchParams.set("step", String(v.step + 1));
    window.history.replaceState(window.history.state, "", url);
  }

  key(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || !this.root.isConnected) return;
    const target = event.target;
    const inside = this.root.contains(target);
    if (!inside && !(this.trace && this.trace.header.style.present)) return;
    // Typing is left alone; the step view's own Layer and Head buttons take the arrows as everywhere
    // else in it (a browser's radios would move ↑/↓ within the heads).
    const ownRadio = inside && target.matches && target.matches(".avi-radio input");
    if (!ownRadio && target.closest && target.closest("input, textarea, select, [contenteditable], [role=slider], [role=textbox]")) return;
    const v = this.view;
    const moves = {
      ArrowLeft: { head: v.head - 1 },
      ArrowRight: { head: v.head + 1 },
      ArrowUp: { layer: v.layer - 1 },
      ArrowDown: { layer: v.layer + 1 },
      PageUp: { step: v.step - 1 },
      PageDown: { step: v.step + 1 },
    };
    if (!(event.key in moves)) return;
    if (event.key.startsWith("Page") && !this.trace.header.style.present) return;
    event.preventDefault();
    this.setView(moves[event.key]);
  }

  // --- drawing ----------------------------------------------------------------------------------

  draw() {
    // The theme first, while the page's styles are clean: read after the changes below, it would
    // make the browser recompute the styles of the whole page.
    const style = getComputedStyle(this.root);
    this.theme = {
      color: style.getPropertyValue("--st-text-color").trim() || "#31333f",
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
      STEPS.forEach((step, i) => (this.sections[step].hidden = i !== v.step));
      this.prev.disabled = v.step === 0;
      this.next.disabled = v.step === STEPS.length - 1;
      this.position.textContent = fill(t.present_position, { step: v.step + 1, total: STEPS.length });
    }
    this.heading.textContent = fill(t.heads_layer, { layer: v.layer + 1 });
    this.root.dataset.layer = String(v.layer);
    this.root.dataset.head = String(v.head);
    this.root.dataset.query = String(v.query);
    this.root.dataset.step = String(v.step);

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

  // Every chart shown is drawn at once (a chart is about a millisecond on a canvas). A chart whose
  // numbers did not change (the strip of heads on a change of head) is not drawn again, nor one
  // on a step that presentation mode hides: it is drawn when its step is shown.
  drawCharts(layer) {
    const v = this.view;
    const look = `${this.trace.id}|${this.shape}|${this.theme.color}|${this.theme.family}`;
    const picks = this.pickKey();
    const keys = { grid: `${look}|${picks}`, heads: `${look}|${v.layer}|${picks}` };
    for (const name of Object.keys(this.charts)) {
      if (!(name in keys) && !layer) continue;
      if (this.trace.header.style.present && this.sections[name].hidden) continue;
      const key = keys[name] || `${look}|${v.layer}|${v.head}`;
      if (this.charts[name].dataset.shows !== key && this.drawOne(name)) this.charts[name].dataset.shows = key;
    }
    if (this.charts.grid) this.heatmaps.grid.outline(this.shapes("grid")); // around the head on show
    this.root.dataset.picked = picks; // the tokens the strip and the grid now show (tests, the bench)
    if (layer) this.root.dataset.ready = this.root.dataset.complete = `${v.layer},${v.head},${v.query},${v.step}`;
    else delete this.root.dataset.complete;
  }

  drawOne(name) {
    const v = this.view;
    const layer = this.trace.layers.get(v.layer);
    const figure = {
      heads: () => this.headsFigure(),
      grid: () => this.gridFigure(),
      qkv: () => this.qkvFigure(layer),
      scores: () => this.matrixFigure("scores", layer.scores, false),
      scaled: () => this.matrixFigure("scaled", layer.scaled_scores, true),
      weights: () => this.matrixFigure("weights", this.trace.weights[v.layer], true),
      context: () => this.vectorsFigure("context", layer.context),
    }[name]();
    const where = `L${v.layer + 1}H${v.head + 1}`;
    const layout = figure.layout;
    layout.shapes = this.shapes(name);
    layout.font = { ...layout.font, color: this.theme.color, ...(this.theme.family ? { family: this.theme.family } : {}) };
    if (layout.title && layout.title.text) layout.title = { ...layout.title, text: layout.title.text.replace("{where}", where) };
    const div = this.charts[name];
    div.dataset.where = { heads: `L${v.layer + 1}`, grid: "" }[name] ?? where;
    return this.heatmaps[name].draw(figure, this.theme);
  }

  // A chart's figure to fill in. Plotly's theme (layout.template), which only Plotly reads when it
  // saves the chart, comes once for all charts and is shared rather than copied.
  template(name) {
    const { data, layout } = this.trace.header.templates[name];
    return { data: structuredClone(data), layout: { ...structuredClone(layout), template: this.trace.header.plotly_template } };
  }

  cellTexts(rows) {
    return rows.map((values) => Array.from(values, (value) => (Number.isFinite(value) ? numberText(value, 2) : "")));
  }

  qkvFigure(layer) {
    const figure = this.template("qkv");
    const v = this.view;
    const labels = this.trace.header.labels;
    let largest = 0;
    ["q", "k", "v"].forEach((name, index) => {
      const rows = rowsOf(layer[name], v.head);
      for (const values of rows) for (const value of values) if (Number.isFinite(value)) largest = Math.max(largest, Math.abs(value));
      const trace = figure.data[index];
      trace.z = rows;
      trace.customdata = rows.map((values, i) => Array.from(values, () => labels[i]));
      if (this.trace.header.show_values.qkv) trace.text = this.cellTexts(rows);
    });
    largest = largest || 1;
    figure.layout.coloraxis = { ...figure.layout.coloraxis, cmin: -largest, cmax: largest };
    return figure;
  }

  vectorsFigure(name, array) {
    const figure = this.template(name);
    const labels = this.trace.header.labels;
    const rows = rowsOf(array, this.view.head);
    const trace = figure.data[0];
    trace.z = rows;
    trace.customdata = rows.map((values, i) => Array.from(values, () => labels[i]));
    if (this.trace.header.show_values.context) trace.text = this.cellTexts(rows);
    return figure;
  }

  matrixFigure(name, array, masked) {
    const figure = this.template(name);
    const labels = this.trace.header.labels;
    const mask = masked ? this.trace.mask : null;
    const n = labels.length;
    const raw = rowsOf(array, this.view.head);
    const isMasked = (i, j, value) => !Number.isFinite(value) || (mask !== null && mask.data[i * n + j] === 0);
    const rows = raw.map((values) => (values.every(Number.isFinite) ? values : Array.from(values, (x) => (Number.isFinite(x) ? x : NaN))));
    const trace = figure.data[0];
    trace.z = rows;
    trace.customdata = labels.map((query) => labels.map((key) => [query, key]));
    // As viz.heatmaps.cell_texts: the value where numbers fit, the mask mark wherever a key is hidden.
    const show = this.trace.header.show_values.matrix;
    if (show || raw.some((values, i) => values.some((x, j) => isMasked(i, j, x)))) {
      const mark = this.trace.header.mask_mark;
      trace.text = raw.map((values, i) => Array.from(values, (value, j) => (isMasked(i, j, value) ? mark : show ? numberText(value, 2) : "")));
      trace.texttemplate = "%{text}";
    }
    if (name === "weights" && this.trace.header.style.fit_weights) {
      let top = 0;
      for (const values of raw) for (const value of values) if (value > top) top = value;
      trace.zmax = top > 0 ? top : 1;
    }
    return figure;
  }

  headsFigure() {
    const figure = this.template("heads");
    const h = this.trace.header;
    const v = this.view;
    const trace = figure.data[0];
    trace.z = rowsOf(this.tileStrip(v.layer), 0); // (m, heads·(m+gap)-gap)
    trace.customdata = this.tileHover(trace.z, v.layer, h.strip_tokens);
    figure.layout.yaxis = { ...figure.layout.yaxis, ticktext: [`${h.strings.layer} ${v.layer + 1}`] };
    // The template captions its own layer's heads: this layer's captions in the same places.
    const captions = this.tileCaptions(v.layer);
    figure.layout.annotations = (figure.layout.annotations || []).map((a, head) => ({ ...a, text: captions[head] }));
    return figure;
  }

  // A layer's tiles as the strip and the grid show them: every weight, or the tokens chosen.
  tileStrip(layer) {
    return this.picked.size ? this.pickedStrip(layer) : this.trace.strips[layer];
  }

  // A layer's captions: each head's habit (the server's), or what the tokens chosen do in it.
  tileCaptions(layer) {
    if (this.picked.size) return this.pickedCaptions(layer);
    const captions = this.trace.header.tile_labels;
    return captions ? captions[layer] : [];
  }

  // Every layer's strip, one under the other, `grid_gap` empty rows between.
  gridFigure() {
    const figure = this.template("grid");
    const h = this.trace.header;
    const z = [];
    const captions = [];
    this.trace.strips.forEach((strip, layer) => {
      if (layer) for (let g = 0; g < h.grid_gap; g++) z.push(new Float32Array(strip.shape[1]).fill(NaN));
      z.push(...rowsOf(this.tileStrip(layer), 0));
      captions.push(...this.tileCaptions(layer));
    });
    const trace = figure.data[0];
    trace.z = z;
    trace.customdata = this.tileHover(z, 0, h.grid_tokens);
    figure.layout.annotations = (figure.layout.annotations || []).map((a, k) => ({ ...a, text: captions[k] })); // layer by layer
    return figure;
  }

  // As viz.grid.hover_data: per cell of tiled maps, [layer, head] (1-based), then the query and key
  // (their labels, or else the first position of the block a pooled cell averages).
  tileHover(z, firstLayer, withTokens) {
    const h = this.trace.header;
    const block = h.grid_block;
    const m = Math.ceil(h.tokens.length / block);
    const stride = m + h.grid_gap;
    return z.map((values, r) => {
      const q = r % stride;
      const layer = firstLayer + Math.floor(r / stride) + 1;
      return Array.from(values, (_, c) => {
        const k = c % stride;
        const head = Math.floor(c / stride) + 1;
        if (withTokens) return [layer, head, q < m ? h.labels[q] : "", k < m ? h.labels[k] : ""];
        return [layer, head, q < m ? q * block + 1 : 0, k < m ? k * block + 1 : 0];
      });
    });
  }

  // Linked hover: cell (i, j) of any n × n map lights up query row i of Q, key row j of K and V,
  // cell (i, j) of the scores, row i of the softmax and of the context. One redraw per frame.
  hover(point) {
    this.pendingHover = point;
    if (this.hoverFrame) return;
    this.hoverFrame = requestAnimationFrame(() => {
      this.hoverFrame = null;
      const target = this.pendingHover;
      const cell = target ? [Math.round(target.y), Math.round(target.x)] : null;
      if (JSON.stringify(cell) === JSON.stringify(this.cell)) return;
      this.highlight(cell);
    });
  }

  highlight(cell) {
    this.cell = cell;
    if (cell) this.root.dataset.hover = `${cell[0]},${cell[1]}`;
    else delete this.root.dataset.hover;
    for (const name of ["qkv", ...MATRICES, "context"]) this.heatmaps[name].outline(this.shapes(name));
  }

  // viz's outline of layer 1 head 1 (the grid's template), moved to the head on show.
  gridOutline() {
    const stride = this.tileStride();
    const [dx, dy] = [this.view.head * stride, this.view.layer * stride];
    const outline = this.trace.header.templates.grid.layout.shapes || [];
    return outline.map((s) => ({ ...s, x0: s.x0 + dx, x1: s.x1 + dx, y0: s.y0 + dy, y1: s.y1 + dy }));
  }

  // The outlines that link cell (i, j) across the steps (none without a cell).
  shapes(name) {
    if (name === "grid") return this.gridOutline();
    if (!this.cell || name === "heads") return [];
    const [i, j] = this.cell;
    const h = this.trace.header;
    const colour = this.theme.color;
    const line = { color: colour, width: 3 };
    const rect = (xref, x0, x1, y0, y1) => ({ type: "rect", xref, yref: "y", x0, x1, y0, y1, line, fillcolor: "rgba(0,0,0,0)" });
    const n = h.tokens.length;
    const d = h.d_head;
    const cellRect = rect("x", j - 0.5, j + 0.5, i - 0.5, i + 0.5);
    switch (name) {
      case "qkv": // query row i of Q; key row j of K and of V (the value that weight (i, j) takes)
        return [rect("x", -0.5, d - 0.5, i - 0.5, i + 0.5), rect("x2", -0.5, d - 0.5, j - 0.5, j + 0.5), rect("x3", -0.5, d - 0.5, j - 0.5, j + 0.5)];
      case "weights":
        return [rect("x", -0.5, n - 0.5, i - 0.5, i + 0.5), cellRect];
      case "context":
        return [rect("x", -0.5, d - 0.5, i - 0.5, i + 0.5)];
      default:
        return [cellRect];
    }
  }

  // --- the worked example: the trace's numbers for one query, step by step --------------------

  drawWorked(layer) {
    const h = this.trace.header;
    const t = h.strings;
    const v = this.view;
    const n = h.tokens.length;
    const q = v.query;
    const d = h.d_head;
    const pick = (array) => rowsOf(array, v.head)[q];
    const dots = Array.from(pick(layer.scores));
    const scaled = Array.from(pick(layer.scaled_scores));
    const weights = Array.from(pick(this.trace.weights[v.layer]));
    const context = Array.from(pick(layer.context));
    const values = rowsOf(layer.v, v.head);
    const finite = scaled.filter(Number.isFinite);
    const largest = Math.max(...finite);
    const shift = largest > h.max_unshifted_exponent ? largest : 0;
    const exps = scaled.map((s) => Math.exp(s - shift));
    const expSum = exps.reduce((a, b) => a + b, 0);
    const total = weights.reduce((a, b) => a + b, 0);

    const parts = [
      el("p", { text: fill(t.worked_intro, { query: q + 1, layer: v.layer + 1, head: v.head + 1 }) }),
      el("p", { text: t.worked_step1 }),
      el("p", { text: t.worked_step2 }),
      el("p", { text: fill(t.worked_step3, { sum: expSum }) }),
    ];
    if (shift) parts.push(el("p", { class: "avi-caption", text: fill(t.worked_shift, { shift }) }));
    parts.push(el("p", { text: fill(t.worked_step4, { total }) }));
    if (n <= 6) parts.push(this.softmaxFormula(q, scaled, weights));
    const header = [t.col_key, t.col_dot, t.col_scaled, t.col_exp, t.col_weight];
    const rows = h.tokens.map((token, j) => [token, ...[dots[j], scaled[j], exps[j], weights[j]].map((x) => numberText(x, 4))]);
    parts.push(this.table(header, rows, [], "avi-table-steps"));
    if (scaled.some((s) => !Number.isFinite(s))) parts.push(el("p", { class: "avi-caption", text: t.worked_masked }));
    parts.push(el("p", { text: t.worked_step5 }));
    const dims = Math.min(d, h.worked_dimensions);
    if (dims < d) parts.push(el("p", { class: "avi-caption", text: t.worked_dims }));
    const weighted = values.map((vector, j) => Array.from(vector.subarray(0, dims), (x) => weights[j] * x));
    const sums = Array.from({ length: dims }, (_, c) => weighted.reduce((a, r) => a + r[c], 0));
    const vectorHeader = [t.col_key, ...Array.from({ length: dims }, (_, c) => `${t.col_weighted}[${c}]`)];
    const vectorRows = h.tokens.map((token, j) => [token, ...weighted[j].map((x) => numberText(x, 4))]);
    const footer = [
      [t.weighted_sum_row, ...sums.map((x) => numberText(x, 4))],
      [t.context_row, ...context.slice(0, dims).map((x) => numberText(x, 4))],
    ];
    parts.push(this.table(vectorHeader, vectorRows, footer, "avi-table-sum"));
    this.worked.replaceChildren(...parts);
  }

  // Steps 1 to 5 as a table: a header, one row per key, and rows kept in view below a long body.
  table(header, rows, footer, name) {
    const make = (cells, tag) => el("tr", {}, ...cells.map((cell, c) => el(tag, { class: c ? "avi-number" : "avi-token", text: cell })));
    const body = el("table", { class: `avi-table ${name}` }, el("thead", {}, make(header, "th")), el("tbody", {}, ...rows.map((r) => make(r, "td"))));
    if (footer.length) body.append(el("tfoot", {}, ...footer.map((r) => make(r, "td"))));
    const scroll = el("div", { class: rows.length > SCROLL_ABOVE_ROWS ? "avi-scroll avi-long" : "avi-scroll" }, body);
    return scroll;
  }

  // Step 4 for a short sentence: every weight of the query's row as e^s / Σ e^s, with its numbers.
  softmaxFormula(q, scaled, weights) {
    const visible = scaled.map((s, j) => [j, s, weights[j]]).filter(([, s]) => Number.isFinite(s));
    const power = (s) => sup(mi("e"), mn(s.toFixed(3)));
    const terms = () => row(...visible.flatMap(([, s], index) => (index ? [mo("+"), power(s)] : [power(s)])));
    const table = m("mtable");
    for (const [j, s, w] of visible) {
      const cells = [sub(mi("A"), row(mn(String(q + 1)), mo(","), mn(String(j + 1)))), mo("="), frac(power(s), terms()), mo("="), mn(w.toFixed(4))];
      table.append(m("mtr", m("mtd", row(...cells))));
    }
    return el("div", { class: "avi-softmax" }, math(table));
  }
}

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

export { numberText }; // for tests/e2e/test_step_view_numbers.py
