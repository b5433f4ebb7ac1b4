// The translation's generation, step by step: a scrubber over the decoder's steps, the
// translation so far, the chosen head's cross-attention row at that step as bars over the source
// characters, and every head's alignment (target × source) as small tiles, filled up to the step.
//
// Python (ui/generation.py) sends one payload per translation (viz/generation.py documents it).
// The decoder is causal, so row t of the finished trace is what step t computed: every change of
// step, layer or head is drawn here at once; the server hears of it once the clicks stop
// (REPORT_MS), only so that the link and a class follow, and it can move the view itself (a link,
// a class's teacher: `command`, with a revision that grows).
//
// Plain JavaScript, no build step: joined after the step view's dom.js (el), numbers.js (fill,
// numberText) and plotly.js (loadPlotly) into one module (ui/generation.py). Every token (user
// text) reaches the page through textContent; Plotly gets the escaped copies the payload carries
// (`*_labels`).

// [[position, "rgb(r, g, b)"], ...] (viz.generation.weight_colorscale) -> value -> "rgb(r, g, b)",
// interpolated in RGB between the stops. The bars are coloured here: Plotly.js 4 warns for every
// bar whose marker colour is a number on a colour scale.
function colourScale(scale, low, high) {
  const stops = scale.map(([position, colour]) => [position, colour.match(/[\d.]+/g).slice(0, 3).map(Number)]);
  return (value) => {
    const x = Math.min(Math.max((value - low) / (high - low), 0), 1);
    let i = 1;
    while (i < stops.length - 1 && stops[i][0] < x) i++;
    const [p0, c0] = stops[i - 1];
    const [p1, c1] = stops[i];
    const f = p1 > p0 ? (x - p0) / (p1 - p0) : 0;
    const rgb = c0.map((c, k) => Math.round(c + f * (c1[k] - c)));
    return `rgb(${rgb.join(", ")})`;
  };
}

let elementCount = 0; // ids for <label for=...>, unique in the page

const BAR_HEIGHT = 280; // px
// The overview is one heatmap of every head's map, tiled with blank cells between them: Plotly
// draws one uniform heatmap in ~20 ms where 48 small figures (6 layers × 8 heads) took ~450 ms
// per step. Cells are whole pixels (a uniform heatmap is drawn as an image, fast), so a tile is
// about TILE_WIDTH × TILE_HEIGHT and a 390 px phone fits two in a row.
const TILE_WIDTH = 128; // px
const TILE_HEIGHT = 96; // px
const CELL_MAX = { width: 32, height: 24 }; // px: a short sentence's tile stays a thumbnail
const TILE_GAP = 16; // px between two tiles of a row, at least
const CAPTION_ROOM = 30; // px under a tile for its name, at least
const TILE_PAD = 4; // px of the tile's button around its map

const REPORT_MS = 400; // after the last change, the view goes to the server (the link, a class)

class Generation {
  constructor(parent) {
    this.uid = ++elementCount;
    this.root = el("div", { class: "avi-generation", "data-testid": "generation" });
    parent.appendChild(this.root);
    this.payload = null;
    this.view = null; // {step (1..T), layer, head}
    this.revision = null; // the server's latest command followed
    this.report = null; // the timer of the view's report to the server
    this.frame = null;
    this.tilesDrawn = null; // "step:columns" of the overview on screen
  }

  // A payload, and the server's command in it: where the view is to be (its `word`, 0 for the whole
  // translation; its layer and head), followed when its revision is new.
  receive(payload, setStateValue) {
    this.setStateValue = setStateValue;
    const command = payload.command;
    if (!(this.payload && payload.id === this.payload.id)) this.open(payload); // not a rerun's re-send
    if (command && command.revision !== this.revision) {
      this.revision = command.revision;
      const p = this.payload;
      const step = command.word >= 1 ? Math.min(command.word, p.n_steps) : p.n_steps;
      this.set({ step, layer: Math.min(command.layer, p.n_layers - 1), head: Math.min(command.head, p.n_heads - 1) }, false);
    }
  }

  open(payload) {
    const previous = this.payload;
    this.payload = payload;
    const p = payload;
    const sameSentence =
      previous && previous.n_steps === p.n_steps && previous.emitted.join("\u0000") === p.emitted.join("\u0000");
    const old = this.view;
    this.view = {
      step: sameSentence && old ? old.step : p.n_steps, // a new translation opens at its end
      layer: old && old.layer < p.n_layers ? old.layer : p.n_layers - 1, // the last layer aligns best
      head: old && old.head < p.n_heads ? old.head : 0,
    };
    delete this.root.dataset.ready;
    this.colour = colourScale(p.colorscale, p.zmin, p.zmax);
    this.build();
    this.draw();
    loadPlotly(p.plotly_url).then(
      (Plotly) => {
        this.Plotly = Plotly;
        this.schedule();
      },
      (error) => {
        this.root.dataset.ready = "error";
        console.error(error);
      },
    );
  }

  // --- structure, once per payload --------------------------------------------------------------

  build() {
    if (this.Plotly && this.bars) this.Plotly.purge(this.bars); // its window resize listener goes with it
    const p = this.payload;
    const t = p.strings;
    const id = (name) => `avi-generation-${this.uid}-${name}`;

    this.range = el("input", {
      type: "range",
      id: id("step"),
      class: "avi-generation-range",
      min: "1",
      max: String(p.n_steps),
      step: "1",
      value: String(this.view.step),
    });
    this.range.addEventListener("input", () => this.set({ step: Number(this.range.value) }));
    this.prev = el("button", { type: "button", class: "avi-generation-prev", text: `‹ ${t.generation_prev}` });
    this.next = el("button", { type: "button", class: "avi-generation-next", text: `${t.generation_next} ›` });
    this.prev.addEventListener("click", () => this.set({ step: this.view.step - 1 }));
    this.next.addEventListener("click", () => this.set({ step: this.view.step + 1 }));
    const scrub = el(
      "div",
      { class: "avi-generation-scrub" },
      el("label", { for: id("step"), class: "avi-generation-label", text: t.generation_step_label }),
      this.prev,
      this.range,
      this.next,
    );

    this.layerSelect = this.select(id("layer"), "avi-generation-layer", p.n_layers, (layer) => this.set({ layer }));
    this.headSelect = this.select(id("head"), "avi-generation-head", p.n_heads, (head) => this.set({ head }));
    const pickers = el(
      "div",
      { class: "avi-generation-pickers" },
      el("label", { for: id("layer"), class: "avi-generation-label", text: t.generation_layer }),
      this.layerSelect,
      el("label", { for: id("head"), class: "avi-generation-label", text: t.generation_head }),
      this.headSelect,
    );

    // What a screen reader hears of a change the eye sees.
    this.status = el("p", { class: "avi-generation-status", "aria-live": "polite" });

    this.words = p.emitted.map((_, i) => {
      const item = el(
        "li",
        { class: p.end[i] ? "avi-generation-word avi-generation-end" : "avi-generation-word" },
        el("span", { class: "avi-generation-token", text: p.shown[i] }),
        el("span", { class: "avi-generation-probability", text: p.probability_texts[i] }),
      );
      return item;
    });
    const sentence = el("ol", { class: "avi-generation-words" }, ...this.words);

    this.bars = el("div", { class: "avi-generation-bars", "data-chart": "bars" });

    this.tiles = [];
    for (let layer = 0; layer < p.n_layers; layer++) {
      for (let head = 0; head < p.n_heads; head++) {
        const name = fill(t.generation_tile, { layer: layer + 1, head: head + 1 });
        const button = el(
          "button",
          {
            type: "button",
            class: "avi-generation-tile",
            "data-layer": String(layer),
            "data-head": String(head),
            "aria-pressed": "false",
          },
          el("span", { class: "avi-generation-tile-name", text: name }),
        );
        button.addEventListener("click", () => this.set({ layer, head }));
        this.tiles.push({ layer, head, button });
      }
    }
    this.overview = el("div", { class: "avi-generation-tiles-plot", "aria-hidden": "true" });
    const grid = el(
      "div",
      { class: "avi-generation-tiles", role: "group", "aria-labelledby": id("tiles") },
      this.overview,
      ...this.tiles.map((tile) => tile.button),
    );
    this.grid = grid;
    // One tab stop for all the tiles (the picked one); the arrow keys move along a row or to the
    // row above or below, as the tiles are laid out; Home and End go to the first and the last.
    grid.addEventListener("keydown", (event) => {
      const k = this.tiles.findIndex((tile) => tile.button === document.activeElement);
      const row = Math.max(1, this.columns);
      const to = { ArrowRight: k + 1, ArrowDown: k + row, ArrowLeft: k - 1, ArrowUp: k - row, Home: 0, End: this.tiles.length - 1 }[event.key];
      if (k < 0 || to === undefined) return;
      event.preventDefault();
      if (to < 0 || to >= this.tiles.length) return; // at an edge: stay
      const tile = this.tiles[to];
      this.set({ layer: tile.layer, head: tile.head });
      tile.button.focus();
    });
    this.cell = {
      width: Math.min(Math.max(Math.floor(TILE_WIDTH / p.source.length), 2), CELL_MAX.width),
      height: Math.min(Math.max(Math.floor(TILE_HEIGHT / p.n_steps), 2), CELL_MAX.height),
    };
    this.columns = 0;
    this.tilesDrawn = null;
    this.placeTiles();
    this.resize?.disconnect();
    this.resize = new ResizeObserver(() => this.placeTiles() && this.schedule());
    this.resize.observe(this.root);

    this.root.replaceChildren(
      el("div", { class: "avi-generation-controls" }, scrub, pickers),
      this.status,
      sentence,
      this.bars,
      el(
        "div",
        { class: "avi-generation-overview" },
        el("p", { class: "avi-generation-heading", id: id("tiles"), text: t.generation_tiles }),
        this.legend(),
      ),
      grid,
    );
    this.barsDrawn = false;
  }

  // The tiles' positions for the element's width: as many columns as fit, the buttons over their
  // maps. True when the columns changed (the overview is then drawn again).
  placeTiles() {
    const p = this.payload;
    const { width, height } = this.cell;
    const gap = { x: Math.ceil(TILE_GAP / width), y: Math.ceil(CAPTION_ROOM / height) }; // blank cells
    const pitch = { x: (p.source.length + gap.x) * width, y: (p.n_steps + gap.y) * height }; // px
    const room = (this.root.clientWidth || TILE_WIDTH * 4) - 2 * TILE_PAD + gap.x * width;
    const fit = Math.max(1, Math.floor(room / pitch.x));
    const columns = fit >= p.n_heads ? p.n_heads : fit; // a layer a row where a layer fits, as the heads grid
    if (columns === this.columns) return false;
    this.columns = columns;
    this.gap = gap;
    const rows = Math.ceil(this.tiles.length / columns);
    this.grid.style.width = `${columns * pitch.x - gap.x * width + 2 * TILE_PAD}px`;
    this.grid.style.height = `${rows * pitch.y}px`;
    this.tiles.forEach((tile, k) => {
      const style = tile.button.style;
      style.left = `${(k % columns) * pitch.x}px`;
      style.top = `${Math.floor(k / columns) * pitch.y}px`;
      style.width = `${p.source.length * width + 2 * TILE_PAD}px`;
      style.height = `${pitch.y - TILE_PAD}px`;
      style.paddingTop = `${p.n_steps * height + 2 * TILE_PAD}px`; // the name under the map
    });
    return true;
  }

  // The tiles' colours, 0 to 1: a strip of the colour scale between its two ends.
  legend() {
    const p = this.payload;
    const strip = el("span", { class: "avi-generation-scale", "aria-hidden": "true" });
    const stops = p.colorscale.map(([position, colour]) => `${colour} ${(100 * position).toFixed(1)}%`);
    strip.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    return el(
      "span",
      { class: "avi-generation-legend" },
      el("span", { text: `${p.strings.generation_weight} ${p.zmin}` }),
      strip,
      el("span", { text: String(p.zmax) }),
    );
  }

  select(id, className, count, pick) {
    const select = el("select", { id, class: className });
    for (let i = 0; i < count; i++) select.append(el("option", { value: String(i), text: String(i + 1) }));
    select.addEventListener("change", () => pick(Number(select.value)));
    return select;
  }

  // --- the view ---------------------------------------------------------------------------------

  // A change of step, layer or head: the text at once, the charts in the next frame (a dragged
  // scrubber fires many input events per frame; only the last is drawn).
  set(change, report = true) {
    const p = this.payload;
    const view = { ...this.view, ...change };
    view.step = Math.min(Math.max(view.step, 1), p.n_steps);
    if (view.step === this.view.step && view.layer === this.view.layer && view.head === this.view.head) return;
    this.view = view;
    this.draw();
    if (report) this.reportSoon();
  }

  // The view to the server once the changes stop: the whole translation is word 0, as a link leaves it.
  reportSoon() {
    clearTimeout(this.report);
    this.report = setTimeout(() => {
      const { step, layer, head } = this.view;
      const word = step === this.payload.n_steps ? 0 : step;
      if (this.setStateValue) this.setStateValue("view", { word, word_layer: layer, word_head: head });
    }, REPORT_MS);
  }

  draw() {
    const p = this.payload;
    const t = p.strings;
    const { step, layer, head } = this.view;
    this.root.dataset.step = String(step);
    this.root.dataset.layer = String(layer);
    this.root.dataset.head = String(head);
    this.range.value = String(step);
    const position = fill(t.generation_step, { t: step, n: p.n_steps });
    const emitted = fill(t.generation_emitted, { token: p.shown[step - 1], p: p.probability_texts[step - 1] });
    this.range.setAttribute("aria-valuetext", `${position}: ${p.shown[step - 1]}`);
    this.prev.disabled = step === 1;
    this.next.disabled = step === p.n_steps;
    this.layerSelect.value = String(layer);
    this.headSelect.value = String(head);
    this.status.textContent = `${position} · ${emitted}`;
    this.words.forEach((item, i) => {
      item.hidden = i >= step;
      item.classList.toggle("is-current", i === step - 1);
      if (i === step - 1) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    });
    for (const tile of this.tiles) {
      const on = tile.layer === layer && tile.head === head;
      tile.button.setAttribute("aria-pressed", String(on));
      tile.button.classList.toggle("is-picked", on);
      tile.button.tabIndex = on ? 0 : -1;
    }
    this.schedule();
  }

  schedule() {
    if (this.frame !== null || !this.Plotly) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.drawCharts();
    });
  }

  // --- the charts -------------------------------------------------------------------------------

  drawCharts() {
    const Plotly = this.Plotly;
    const p = this.payload;
    if (!this.theme) {
      const style = getComputedStyle(this.root);
      this.theme = {
        color: style.getPropertyValue("--st-text-color").trim() || "#31333f",
        family: style.getPropertyValue("--st-font").trim() || undefined,
        grid: style.getPropertyValue("--st-border-color").trim() || "rgba(128, 128, 128, 0.3)", // Plotly's is near-white
      };
    }
    const { step, layer, head } = this.view;
    const figure = this.barFigure(p.weights[layer][head][step - 1], step);
    const config = { displayModeBar: false, responsive: true };
    if (this.barsDrawn) Plotly.react(this.bars, figure.data, figure.layout, config);
    else Plotly.newPlot(this.bars, figure.data, figure.layout, config);
    this.barsDrawn = true;
    const drawn = `${step}:${this.columns}`;
    if (this.tilesDrawn !== drawn) {
      const overview = this.overviewFigure(step);
      const still = { staticPlot: true, displayModeBar: false }; // the buttons over it take the clicks
      if (this.tilesDrawn === null) Plotly.newPlot(this.overview, overview.data, overview.layout, still);
      else Plotly.react(this.overview, overview.data, overview.layout, still);
      this.tilesDrawn = drawn;
    }
    this.root.dataset.ready = "true";
  }

  // The step's cross-attention row: one bar per source character, coloured as the tiles are.
  barFigure(row, step) {
    const p = this.payload;
    const t = p.strings;
    const size = p.font_size;
    const positions = p.source.map((_, i) => i); // numeric, so that a repeated character keeps its own bar
    return {
      data: [
        {
          type: "bar",
          x: positions,
          y: row,
          customdata: p.source_labels,
          hovertemplate: `%{customdata}<br>${t.generation_weight}: %{y:${p.hover_format}}<extra></extra>`,
          marker: { color: row.map(this.colour), line: { color: this.theme.color, width: 1 } },
        },
      ],
      layout: {
        height: BAR_HEIGHT,
        font: { size, color: this.theme.color, family: this.theme.family },
        hoverlabel: { font: { size } },
        title: {
          text: fill(t.generation_looks, { token: p.shown_labels[step - 1] }),
          x: 0,
          xanchor: "left",
          font: { size },
        },
        margin: { l: Math.round(3.5 * size), r: 8, t: 2 * size + 16, b: Math.round(2.2 * size) },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        xaxis: {
          tickmode: "array",
          tickvals: positions,
          ticktext: p.source_labels,
          tickfont: { size },
          fixedrange: true,
          showgrid: false,
        },
        yaxis: {
          range: [p.zmin, p.zmax],
          title: { text: t.generation_weight, font: { size } },
          tickfont: { size },
          gridcolor: this.theme.grid,
          fixedrange: true,
          zeroline: false,
        },
        bargap: 0.25,
      },
    };
  }

  // Every head's alignment up to the step, as tiles of one heatmap: rows (emitted tokens) 1..step
  // filled, the later rows blank (null), blank cells between the tiles.
  overviewFigure(step) {
    const p = this.payload;
    const S = p.source.length;
    const T = p.n_steps;
    const { gap, columns } = this;
    const rows = Math.ceil(this.tiles.length / columns);
    const width = columns * (S + gap.x) - gap.x; // cells
    const height = rows * (T + gap.y); // cells
    const z = Array.from({ length: height }, () => new Array(width).fill(null)); // (height, width)
    this.tiles.forEach((tile, k) => {
      const top = Math.floor(k / columns) * (T + gap.y);
      const left = (k % columns) * (S + gap.x);
      const map = p.weights[tile.layer][tile.head]; // (T, S)
      for (let i = 0; i < step; i++) {
        const row = z[top + i];
        for (let j = 0; j < S; j++) row[left + j] = map[i][j];
      }
    });
    return {
      data: [{ type: "heatmap", z, zmin: p.zmin, zmax: p.zmax, colorscale: p.colorscale, showscale: false }],
      layout: {
        width: width * this.cell.width,
        height: height * this.cell.height,
        margin: { l: 0, r: 0, t: 0, b: 0 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        xaxis: { visible: false, range: [-0.5, width - 0.5], fixedrange: true },
        yaxis: { visible: false, range: [height - 0.5, -0.5], fixedrange: true }, // the first step at the top
      },
    };
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let view = parentElement.__aviGeneration;
  if (!view || !view.root.isConnected) {
    view = new Generation(parentElement);
    parentElement.__aviGeneration = view;
  }
  try {
    if (data) view.receive(data, setStateValue);
  } catch (error) {
    view.payload = null;
    view.root.replaceChildren(el("p", { class: "avi-generation-status", text: String(error) }));
    view.root.dataset.ready = "error";
  }
}
