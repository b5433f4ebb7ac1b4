// The step view's heatmaps, drawn on a canvas from the same Plotly figures the rest of the page uses.
//
// Plotly.react redraws a whole chart, axes and colour bar included, for any change of its numbers,
// even for 3 × 3 cells, most of it measuring text, so five charts could not follow a click within
// a frame or two. A chart here is the figure viz built (its margins, axes, tick labels, titles,
// colour scale, cell texts and hover template) drawn by this file: the cells and their numbers on
// a canvas (one pixel per cell, scaled up), titles, ticks, the colour bar and the linked-hover
// outlines in an SVG over it, the hover label in a `div`, so that a change of head redraws the
// charts within a frame (bench/app_latency.py measures it). Plotly still makes every downloaded
// image, from the very figure shown (`download`), so a saved chart is the page's figure at full
// quality.
//
// The figures use a small part of Plotly's schema, and this draws that part: heatmap traces (z,
// text with texttemplate "%{text}", customdata, hovertemplate, hoverongaps, colorscale with zmin,
// zmax or zmid, or a shared coloraxis), axes with a domain, tickvals/ticktext or automatic ticks,
// tickangle, a title and autorange "reversed", square cells (scaleanchor), the title, margins,
// font size, rectangle shapes and text annotations (x, y in cells, xanchor, yanchor, font, bgcolor).
// Text is set with textContent only: tokens are user text.

const SVG_NS = "http://www.w3.org/2000/svg";
const DEFAULT_HEIGHT = 450; // Plotly's own default: a figure without a height of its own gets this
const COLORBAR_PAD = 10; // between the cells and the colour bar, as Plotly's colorbar.xpad
const TICK_GAP = 4; // between a tick label and what it labels
const MIN_CELL_FONT = 7; // px: cell numbers smaller than this are not drawn (the hover still has them)
const ANNOTATION_PAD = 2; // px between an annotation's text and the edge of its box
const ANNOTATION_MAX_SHARE = 0.25; // of the height down to the next annotation below (or the cells' end)
const STACK_BELOW_PX = 150; // panels side by side narrower than this each are stacked instead
const LABEL_LINE = 1.15; // ems across one line of label: the least room between two turned labels
const TITLE_ROOM = 2.2; // ems an axis title takes below its labels (viz.style.token_margins's title_room)

// Token labels come HTML-escaped for Plotly (viz.style.token_labels: &, < and > only).
export function plainText(text) {
  return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function parseColour(colour) {
  const text = String(colour).trim();
  if (text.startsWith("#")) {
    const hex = text.length === 4 ? [...text.slice(1)].map((c) => c + c).join("") : text.slice(1, 7);
    return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }
  const parts = text.match(/[\d.]+/g) || ["0", "0", "0"];
  return parts.slice(0, 3).map(Number);
}

// A colour scale ([[0, colour], ..., [1, colour]]) as 256 RGB entries, for cells by the thousand.
function colourTable(scale) {
  const stops = scale.map(([at, colour]) => [Number(at), parseColour(colour)]);
  const table = new Uint8ClampedArray(256 * 3);
  for (let k = 0; k < 256; k++) {
    const t = k / 255;
    let s = 1;
    while (s < stops.length - 1 && stops[s][0] < t) s++;
    const [t0, c0] = stops[s - 1];
    const [t1, c1] = stops[s];
    const f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    for (let c = 0; c < 3; c++) table[3 * k + c] = Math.round(c0[c] + f * (c1[c] - c0[c]));
  }
  return table;
}

// Dark cells get white numbers, light cells black ones (relative luminance, as WCAG reckons it).
function contrastText([r, g, b]) {
  const linear = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b) > 0.179 ? "#000" : "#fff";
}

// Round steps (1, 2 or 5 × 10^k) at least `least` apart, from lo to hi: the colour bar's ticks.
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return { values: [lo], decimals: 0 };
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const values = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) values.push(Number(v.toFixed(decimals)));
  return { values, decimals };
}

function tickLabel(value, decimals) {
  const text = value.toFixed(decimals);
  return (Number(text) === 0 ? text.replace("-", "") : text).replace("-", "−");
}

// Plotly's hover template, the part the figures use: %{x}, %{y}, %{z:.4f}, %{text}, %{customdata},
// %{customdata[k]}, <br> between lines and <extra></extra> dropped. Returns the lines as text.
function hoverLines(template, point, numberText) {
  const body = template.replace(/<extra>.*?<\/extra>/g, "");
  const line = (part) =>
    part.replace(/%\{(\w+)(?:\[(\d+)\])?(?::([^}]*))?\}/g, (_, name, index, format) => {
      let value = point[name];
      if (index !== undefined && Array.isArray(value)) value = value[Number(index)];
      if (value === undefined || value === null) return "";
      const fixed = format && format.match(/^\.(\d+)f$/);
      if (fixed && typeof value === "number") return numberText(value, Number(fixed[1]));
      return plainText(value);
    });
  return body.split(/<br\s*\/?>/i).map(line);
}

export class HeatmapChart {
  // `div` is the chart's box; `numberText` prints a value as the page does everywhere else.
  // `label` names a chart whose figure has no title; `cellJoin` joins a cell's hover lines into its
  // accessible name (cells.js).
  // `onResize`, if given, may draw the chart anew for its new width (returning true) instead.
  constructor(div, { numberText, onHover, onClick, onDownload, onEscape, onResize, downloadLabel, label, cellJoin }) {
    this.div = div;
    this.label = label;
    this.numberText = numberText;
    this.onHover = onHover;
    this.onClick = onClick;
    this.onEscape = onEscape;
    this.cellJoin = cellJoin || ", ";
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("aria-hidden", "true");
    this.chrome = svg("svg", { class: "avi-chrome", "aria-hidden": "true" });
    this.outlines = svg("g", { class: "avi-outlines" });
    this.tip = document.createElement("div");
    this.tip.className = "avi-tip";
    this.tip.hidden = true;
    this.tip.setAttribute("aria-hidden", "true");
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.className = "avi-download";
    this.button.textContent = "⤓";
    this.button.title = downloadLabel;
    this.button.setAttribute("aria-label", downloadLabel);
    this.button.addEventListener("click", () => this.figure && onDownload(this.figure));
    div.heatmapChart = this; // tests and tools read what a chart drew (`figure`) and where (`cellCentre`)
    div.classList.add("avi-heatmap");
    div.append(this.canvas, this.chrome, this.tip, this.gridSurface(), this.button);
    div.addEventListener("pointermove", (event) => this.pointer(event));
    // A finger lifted leaves the chart at once (pointerleave follows pointerup): what it tapped
    // stays outlined until the next tap.
    div.addEventListener("pointerleave", (event) => event.pointerType !== "touch" && this.pointing && this.leave());
    div.addEventListener("click", (event) => {
      if (event.target === this.button) return;
      const hit = this.pointer(event); // a tap has no hover before it: the click shows what hover shows
      if (hit && this.onClick) this.onClick(hit);
    });
    this.width = 0; // drawn at this width
    this.boxWidth = 0; // the box's width as last observed: read without forcing a layout
    new ResizeObserver(([entry]) => {
      this.boxWidth = entry.contentBoxSize[0].inlineSize;
      if (!this.figure || !this.boxWidth || Math.round(this.boxWidth) === Math.round(this.width)) return;
      if (!(onResize && onResize())) this.draw(this.figure, this.theme);
    }).observe(div);
  }

  // Draws `figure` ({data, layout} as Plotly takes it, z as rows of numbers, NaN for no cell).
  // `theme`: the page's text colour and font. Returns false while the box has no width (hidden).
  draw(figure, theme) {
    const width = this.boxWidth || this.div.clientWidth;
    this.figure = figure;
    this.theme = theme;
    if (!width) return false;
    this.width = width;
    const layout = figure.layout;
    const title = layout.title && layout.title.text ? plainText(layout.title.text) : "";
    this.surface.setAttribute("aria-label", title || this.label || "");
    const font = (layout.font && layout.font.size) || 14;
    this.font = font;
    const family = theme.family || "sans-serif";
    this.fontCss = (size) => `${size}px ${family}`;
    const scale = this.colourScale(figure);
    const { panels, plot, height } = this.layoutPanels(figure, width, scale);
    this.panels = panels;
    this.div.style.height = `${height}px`;

    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const context = this.canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    for (const panel of this.panels) this.drawCells(context, panel, scale);

    this.chrome.setAttribute("width", width);
    this.chrome.setAttribute("height", height);
    this.chrome.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.chrome.replaceChildren();
    const text = svg("g", { fill: theme.color, "font-family": family, "font-size": font });
    for (const panel of this.panels) this.drawCellTexts(text, panel, scale);
    if (title) {
      const size = Math.min(font, (font * width) / Math.max(1, this.measure(font)(title) * 1.05)); // a narrow screen: smaller
      text.append(svg("text", { class: "avi-title", x: 0, y: layout.margin.t / 2 + 0.35 * font, "font-weight": 600, "font-size": size.toFixed(1) }, title));
    }
    // Panels side by side that share a y axis (Q, K and V) label its rows once, at the first.
    const labelled = new Set();
    for (const panel of this.panels) {
      this.drawAxes(text, panel, !labelled.has(panel.rowsKey));
      labelled.add(panel.rowsKey);
    }
    if (scale.shown) this.drawColourBar(text, scale, plot);
    this.chrome.append(text, this.drawAnnotations(layout.annotations || []), this.outlines, this.focusMarks);
    this.outline(layout.shapes || []);
    this.refreshFocus();
    return true;
  }

  // The colour scale of the figure: one per chart (a shared coloraxis, or the first trace's own).
  colourScale(figure) {
    const axis = figure.layout.coloraxis;
    const trace = figure.data[0];
    const source = axis || trace;
    const colours = source.colorscale;
    let lo = axis ? axis.cmin : trace.zmin;
    let hi = axis ? axis.cmax : trace.zmax;
    const mid = axis ? axis.cmid : trace.zmid;
    if (lo === undefined || hi === undefined || lo === null || hi === null) {
      let min = Infinity;
      let max = -Infinity;
      for (const trace of figure.data) for (const row of trace.z) for (const value of row) if (Number.isFinite(value)) {
        if (value < min) min = value;
        if (value > max) max = value;
      }
      if (min > max) [min, max] = [0, 1];
      if (mid !== undefined && mid !== null) {
        const reach = Math.max(Math.abs(max - mid), Math.abs(min - mid)) || 1;
        [lo, hi] = [mid - reach, mid + reach];
      } else [lo, hi] = min < max ? [min, max] : [min - 0.5, max + 0.5];
    }
    const bar = (axis ? axis.colorbar : trace.colorbar) || {};
    const shown = (axis ? axis.showscale : trace.showscale) !== false;
    const ticks = niceTicks(lo, hi, 5);
    const label = (value) => tickLabel(value, ticks.decimals);
    const measure = this.measure(this.font);
    const labelWidth = Math.max(...ticks.values.map((value) => measure(label(value))));
    const barTitle = bar.title && bar.title.text ? plainText(bar.title.text) : "";
    const thickness = bar.thickness || 30;
    const room = shown ? COLORBAR_PAD + Math.max(thickness + TICK_GAP + labelWidth, measure(barTitle)) + 4 : 0;
    return { colours, table: colourTable(colours), lo, hi, ticks, label, title: barTitle, thickness, shown, room };
  }

  measure(size) {
    const context = (HeatmapChart.ruler ||= document.createElement("canvas").getContext("2d"));
    context.font = this.fontCss(size);
    return (text) => context.measureText(text).width;
  }

  plotArea(figure, width, height, scale) {
    const margin = figure.layout.margin || { l: 80, r: 80, t: 100, b: 80 };
    const left = margin.l;
    const right = Math.max(left + 10, width - margin.r - scale.room);
    return { left, right, top: margin.t, bottom: Math.max(margin.t + 10, height - margin.b), margin };
  }

  // The panels (one per trace) and the chart's height. Panels side by side that would be narrower
  // than STACK_BELOW_PX each (Q, K and V on a phone) are stacked instead, each the full width with
  // its own row labels. Each panel's x labels are fitted to their room (`fitTicks`); labels turned
  // to fit get the height they need below the cells.
  layoutPanels(figure, width, scale) {
    const layout = figure.layout;
    const height = layout.height || DEFAULT_HEIGHT;
    const plot = this.plotArea(figure, width, height, scale);
    // Q, K and V: side by side (in cross-attention K and V have rows of their own, on a second y axis).
    const sideBySide = figure.data.length > 1;
    let panels = figure.data.map((trace) => this.panel(trace, layout, plot));
    const stacked = sideBySide && panels.some((panel) => panel.right - panel.left < STACK_BELOW_PX);
    if (!stacked) {
      const extra = Math.max(0, ...panels.map((panel) => this.fitTicks(panel, plot.margin.b)));
      for (const panel of panels) panel.slotBottom = height + extra;
      return { panels, plot, height: height + extra };
    }
    // Each panel's rows as tall as its cells are wide (at least a line of label), up to the figure's height.
    const { rows, columns } = panels[0];
    const cells = Math.min(plot.bottom - plot.top, rows * Math.max((plot.right - plot.left) / Math.max(1, columns), LABEL_LINE * 1.4 * this.font));
    const whole = { x: [0, 1], y: [0, 1] };
    panels = figure.data.map((trace) => this.panel(trace, layout, plot, whole));
    const extra = Math.max(0, ...panels.map((panel) => this.fitTicks(panel, plot.margin.b)));
    const slot = cells + plot.margin.b + extra;
    panels = figure.data.map((trace, i) => {
      const top = plot.top + i * slot;
      const panel = this.panel(trace, layout, { ...plot, top, bottom: top + cells }, whole);
      this.fitTicks(panel, plot.margin.b);
      return Object.assign(panel, { rowsKey: i, slotBottom: top + slot });
    });
    return { panels, plot: { ...plot, bottom: plot.top + (panels.length - 1) * slot + cells }, height: plot.top + panels.length * slot };
  }

  // Where one trace's cells go: its axes' domain within the plot area (or `domain`, {x, y}, given
  // instead), one column per x.
  panel(trace, layout, plot, domain = null) {
    const xName = `xaxis${(trace.xaxis || "x").slice(1)}`;
    const yName = `yaxis${(trace.yaxis || "y").slice(1)}`;
    const xAxis = layout[xName] || {};
    const yAxis = layout[yName] || {};
    const rows = trace.z.length;
    const columns = rows ? trace.z[0].length : 0;
    const [xa, xb] = (domain && domain.x) || xAxis.domain || [0, 1];
    const [ya, yb] = (domain && domain.y) || yAxis.domain || [0, 1];
    let left = plot.left + xa * (plot.right - plot.left);
    let right = plot.left + xb * (plot.right - plot.left);
    let top = plot.top + (1 - yb) * (plot.bottom - plot.top);
    let bottom = plot.top + (1 - ya) * (plot.bottom - plot.top);
    if (yAxis.scaleanchor || xAxis.scaleanchor) {
      // Square cells, centred where the other side has room to spare.
      const side = Math.min((right - left) / columns, (bottom - top) / rows);
      const [cx, cy] = [(left + right) / 2, (top + bottom) / 2];
      [left, right] = [cx - (side * columns) / 2, cx + (side * columns) / 2];
      [top, bottom] = [cy - (side * rows) / 2, cy + (side * rows) / 2];
    }
    const reversed = yAxis.autorange === "reversed";
    const x = (value) => left + ((value + 0.5) / columns) * (right - left);
    const y = (value) => (reversed ? top + ((value + 0.5) / rows) * (bottom - top) : bottom - ((value + 0.5) / rows) * (bottom - top));
    const yRef = trace.yaxis || "y";
    return { trace, xRef: trace.xaxis || "x", yRef, rowsKey: yRef, xAxis, yAxis, rows, columns, left, right, top, bottom, reversed, x, y };
  }

  // A panel's x labels, placed so that no two meet: level when they fit between their neighbours,
  // else turned (the figure's angle, or upright), else upright and only every few. Sets
  // `panel.xTicks` ({values, labels, angle}) and `panel.yStep` (every how many rows has a label);
  // returns how much lower than the figure's bottom margin the turned labels reach.
  fitTicks(panel, bottomMargin) {
    const font = this.font;
    const measure = this.measure(font);
    const { xAxis } = panel;
    let values = xAxis.tickvals;
    let labels = xAxis.ticktext;
    const cellWidth = (panel.right - panel.left) / Math.max(1, panel.columns);
    if (!values) {
      // every `dtick`, or round steps that leave the labels room
      const widest = measure(String(panel.columns - 1)) + 2 * TICK_GAP;
      let step = xAxis.dtick || 1;
      if (!xAxis.dtick || step * cellWidth < widest) step = [1, 2, 5, 10, 20, 50, 100, 200, 500].find((s) => s * cellWidth >= widest) || 1000;
      values = [];
      for (let v = 0; v < panel.columns; v += step) values.push(v);
      labels = values.map(String);
    }
    labels = values.map((value, k) => plainText(labels ? labels[k] : value));
    const gaps = values.slice(1).map((value, k) => Math.abs(panel.x(value) - panel.x(values[k])));
    const spacing = gaps.length ? Math.min(...gaps) : Infinity;
    const widest = Math.max(0, ...labels.map(measure));
    const line = LABEL_LINE * font; // the room across a turned label
    const given = xAxis.tickangle || 0;
    let angle = given;
    let every = 1;
    if (!(given === 0 && widest + TICK_GAP <= spacing)) {
      angle = [given, -90].find((a) => a !== 0 && spacing * Math.abs(Math.sin((a * Math.PI) / 180)) >= line) ?? -90;
      if (spacing < line) every = Math.ceil(line / spacing);
    }
    if (every > 1) [values, labels] = [values, labels].map((list) => list.filter((_, k) => k % every === 0));
    panel.xTicks = { values, labels, angle };
    const rowHeight = (panel.bottom - panel.top) / Math.max(1, panel.rows);
    panel.yStep = Math.max(1, Math.ceil(line / rowHeight));
    if (angle === given) return 0; // the figure's margins were made for its own angle
    const turn = (Math.abs(angle) * Math.PI) / 180;
    const reach = TICK_GAP + widest * Math.sin(turn) + font * Math.cos(turn);
    const titleRoom = xAxis.title && xAxis.title.text ? TITLE_ROOM * font : 0;
    return Math.max(0, reach - (bottomMargin - titleRoom));
  }

  colourOf(scale, value) {
    const k = Math.round(((value - scale.lo) / (scale.hi - scale.lo || 1)) * 255);
    const i = 3 * Math.min(255, Math.max(0, k));
    return [scale.table[i], scale.table[i + 1], scale.table[i + 2]];
  }

  drawCells(context, panel, scale) {
    const { trace, rows, columns } = panel;
    if (!rows || !columns) return;
    // One pixel per cell, scaled up without smoothing: as fast for 12,000 cells as for 9.
    const image = new ImageData(columns, rows);
    for (let r = 0; r < rows; r++) {
      const values = trace.z[r];
      const line = panel.reversed ? r : rows - 1 - r;
      for (let c = 0; c < columns; c++) {
        const value = values[c];
        if (!Number.isFinite(value)) continue; // no cell: the page shows through
        const [red, green, blue] = this.colourOf(scale, value);
        const at = 4 * (line * columns + c);
        image.data[at] = red;
        image.data[at + 1] = green;
        image.data[at + 2] = blue;
        image.data[at + 3] = 255;
      }
    }
    const cells = (HeatmapChart.scratch ||= document.createElement("canvas"));
    cells.width = columns;
    cells.height = rows;
    cells.getContext("2d").putImageData(image, 0, 0);
    context.imageSmoothingEnabled = false;
    context.drawImage(cells, panel.left, panel.top, panel.right - panel.left, panel.bottom - panel.top);
  }

  // The numbers in the cells, as SVG text: selectable, found by the browser's search, read aloud.
  drawCellTexts(group, panel, scale) {
    const { trace, rows, columns } = panel;
    if (!trace.text || !trace.texttemplate || !rows || !columns) return;
    const cellWidth = (panel.right - panel.left) / columns;
    const cellHeight = (panel.bottom - panel.top) / rows;
    let longest = 1;
    for (const row of trace.text) for (const text of row) if (text && text.length > longest) longest = text.length;
    const size = Math.min(this.font, cellHeight * 0.6, (cellWidth - 2) / (0.6 * longest));
    if (size < MIN_CELL_FONT) return;
    const cells = svg("g", { class: "avi-cells", "font-size": size.toFixed(1), "text-anchor": "middle", "dominant-baseline": "central" });
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        const text = trace.text[r][c];
        if (!text) continue;
        const value = trace.z[r][c];
        const fill = Number.isFinite(value) ? contrastText(this.colourOf(scale, value)) : this.theme.color;
        cells.append(svg("text", { class: "avi-cell", x: panel.x(c).toFixed(1), y: panel.y(r).toFixed(1), fill }, plainText(text)));
      }
    }
    group.append(cells);
  }

  drawAxes(group, panel, withRows) {
    const font = this.font;
    const { xAxis, yAxis } = panel;
    // Rows: the labels at tickvals, right-aligned against the cells.
    if (withRows && yAxis.tickvals && yAxis.showticklabels !== false) {
      yAxis.tickvals.forEach((value, k) => {
        if (k % panel.yStep) return;
        const label = plainText(yAxis.ticktext ? yAxis.ticktext[k] : value);
        group.append(svg("text", { class: "avi-ytick", x: panel.left - TICK_GAP, y: panel.y(value) + 0.35 * font, "text-anchor": "end" }, label));
      });
    }
    // Columns, as `fitTicks` placed them.
    const { values, labels, angle } = panel.xTicks;
    const y = panel.bottom + TICK_GAP + (angle ? 0.3 * font : 0.95 * font);
    values.forEach((value, k) => {
      const x = panel.x(value);
      const attributes = angle ? { x, y, "text-anchor": "end", transform: `rotate(${angle} ${x} ${y})` } : { x, y, "text-anchor": "middle" };
      if (angle === -90) attributes["dominant-baseline"] = "central";
      group.append(svg("text", { class: "avi-xtick", ...attributes }, labels[k]));
    });
    // Axis titles: below the column labels, and turned up the left edge.
    const xTitle = xAxis.title && xAxis.title.text;
    if (xTitle) {
      group.append(svg("text", { class: "avi-xtitle", x: (panel.left + panel.right) / 2, y: panel.slotBottom - 8 - 0.6 * font, "text-anchor": "middle" }, plainText(xTitle)));
    }
    const yTitle = yAxis.title && yAxis.title.text;
    if (yTitle && withRows) {
      const x = 1.2 * font;
      const middle = (panel.top + panel.bottom) / 2;
      group.append(svg("text", { class: "avi-ytitle", x, y: middle, "text-anchor": "middle", transform: `rotate(-90 ${x} ${middle})` }, plainText(yTitle)));
    }
  }

  drawColourBar(group, scale, plot) {
    const font = this.font;
    const left = plot.right + COLORBAR_PAD;
    const top = plot.top + (scale.title ? 1.8 * font : 0.5 * font);
    const bottom = plot.bottom;
    const id = `avi-bar-${Math.random().toString(36).slice(2)}`;
    const gradient = svg("linearGradient", { id, x1: 0, y1: 1, x2: 0, y2: 0 });
    for (const [at, colour] of scale.colours) gradient.append(svg("stop", { offset: at, "stop-color": colour }));
    const defs = svg("defs");
    defs.append(gradient);
    group.append(defs, svg("rect", { class: "avi-colourbar", x: left, y: top, width: scale.thickness, height: Math.max(0, bottom - top), fill: `url(#${id})` }));
    if (scale.title) group.append(svg("text", { class: "avi-bartitle", x: left, y: plot.top + 0.9 * font }, scale.title));
    for (const value of scale.ticks.values) {
      const y = bottom - ((value - scale.lo) / (scale.hi - scale.lo || 1)) * (bottom - top);
      group.append(svg("text", { class: "avi-bartick", x: left + scale.thickness + TICK_GAP, y: y + 0.35 * font }, scale.label(value)));
    }
  }

  // Text boxes in data coordinates (Plotly's layout.annotations without arrows), such as the captions
  // of the grid's tiles. A text wider than the room before the next annotation on its line is set
  // smaller to fit it, and left out below MIN_CELL_FONT, so that captions never run into each other;
  // nor does a box take more than ANNOTATION_MAX_SHARE of the height down to the next one below (a
  // caption leaves most of its tile in view, in the projector's large type too).
  drawAnnotations(annotations) {
    const group = svg("g", { class: "avi-annotations", "font-family": this.theme.family || "sans-serif" });
    const placed = annotations.map((a) => {
      const panel = this.panels.find((p) => p.xRef === (a.xref || "x")) || this.panels[0];
      return { a, panel, x: panel.x(a.x), y: panel.y(a.y) };
    });
    for (const { a, panel, x, y } of placed) {
      const text = plainText(a.text);
      const next = placed.filter((o) => o.panel === panel && o.y === y && o.x > x).reduce((m, o) => Math.min(m, o.x), panel.right);
      const below = placed.filter((o) => o.panel === panel && o.x === x && o.y > y).reduce((m, o) => Math.min(m, o.y), panel.bottom);
      let size = (a.font && a.font.size) || this.font;
      size = Math.min(size, (ANNOTATION_MAX_SHARE * (below - y) - 2 * ANNOTATION_PAD) / 1.25);
      const width = this.measure(size)(text);
      const room = next - x - 2 * ANNOTATION_PAD - 1;
      if (width > room) size *= room / width;
      if (size < MIN_CELL_FONT || !text) continue;
      const boxWidth = this.measure(size)(text) + 2 * ANNOTATION_PAD;
      const boxHeight = 1.25 * size + 2 * ANNOTATION_PAD;
      const left = x - { left: 0, right: boxWidth, center: boxWidth / 2 }[a.xanchor || "center"];
      const top = y - { top: 0, bottom: boxHeight, middle: boxHeight / 2 }[a.yanchor || "middle"];
      group.append(
        svg("rect", { class: "avi-annotation-box", x: left, y: top, width: boxWidth, height: boxHeight, fill: a.bgcolor || "none" }),
        svg("text", { class: "avi-annotation", x: left + ANNOTATION_PAD, y: top + ANNOTATION_PAD + 0.95 * size, "font-size": size.toFixed(1), fill: (a.font && a.font.color) || this.theme.color }, text),
      );
    }
    return group;
  }

  // Rectangles in data coordinates (Plotly's layout.shapes, xref "x", "x2", ...): the linked hover.
  outline(shapes) {
    if (!this.figure) return;
    this.figure.layout.shapes = shapes;
    this.outlines.replaceChildren();
    if (!this.panels) return;
    for (const shape of shapes) {
      const panel = this.panels.find((p) => p.xRef === shape.xref) || this.panels[0];
      const x0 = panel.x(shape.x0);
      const x1 = panel.x(shape.x1);
      const y0 = panel.y(shape.y0);
      const y1 = panel.y(shape.y1);
      const box = { x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0), height: Math.abs(y1 - y0), fill: "none" };
      // A halo in the page's background under the line: the outline reads on a cell of any colour.
      // A lesson's revealed answer (shape.name "answer") is outlined thicker, and tests find it by its class.
      const kind = shape.name === "answer" ? " avi-answer" : "";
      this.outlines.append(
        svg("rect", { ...box, class: `avi-outline-halo${kind}`, stroke: this.theme.background || "#fff", "stroke-width": shape.line.width + 3 }),
        svg("rect", { ...box, class: `avi-outline${kind}`, stroke: shape.line.color, "stroke-width": shape.line.width }),
      );
    }
  }

  // The cell under the pointer: {panel, row, column, value}, or null (also over an empty cell).
  hit(event) {
    if (!this.panels) return null;
    const box = this.div.getBoundingClientRect();
    const x = event.clientX - box.left;
    const y = event.clientY - box.top;
    for (const panel of this.panels) {
      if (x < panel.left || x >= panel.right || y < panel.top || y >= panel.bottom) continue;
      const column = Math.floor(((x - panel.left) / (panel.right - panel.left)) * panel.columns);
      let row = Math.floor(((y - panel.top) / (panel.bottom - panel.top)) * panel.rows);
      if (!panel.reversed) row = panel.rows - 1 - row;
      const value = panel.trace.z[row][column];
      if (!Number.isFinite(value) && panel.trace.hoverongaps === false) return null;
      return { panel, row, column, value, x, y };
    }
    return null;
  }

  // The pointer's cell shown, or what the pointer showed taken away where it left the cells. (Only
  // what it showed: Chromium sends a still mouse's moves as the page scrolls under it, which must
  // not take away the keyboard's cell.)
  pointer(event) {
    if (event.target === this.button) return null;
    const hit = this.hit(event);
    if (!hit) {
      if (this.pointing) this.leave();
      return null;
    }
    this.pointing = true;
    this.show(hit);
    return hit;
  }

  // The hover label at a cell (under the pointer, or the keyboard's), and the linked outlines.
  show(hit) {
    const lines = this.cellLines(hit.panel, hit.row, hit.column);
    this.tip.replaceChildren(...lines.map((line) => Object.assign(document.createElement("div"), { textContent: line })));
    this.tip.hidden = false;
    const room = this.div.clientWidth;
    const tipWidth = this.tip.offsetWidth;
    const left = hit.x + 14 + tipWidth > room ? hit.x - 14 - tipWidth : hit.x + 14;
    this.tip.style.transform = `translate(${Math.max(0, left)}px, ${Math.max(0, hit.y - this.tip.offsetHeight / 2)}px)`;
    this.tip.style.fontSize = `${(this.figure.layout.hoverlabel && this.figure.layout.hoverlabel.font.size) || this.font}px`;
    if (this.onHover) this.onHover({ x: hit.column, y: hit.row, panel: this.panels.indexOf(hit.panel) });
  }

  // What a cell's hover says, line by line, from the figure's hover template: also its
  // accessible name (cells.js), so the ear hears what the eye reads.
  cellLines(panel, row, column) {
    const { trace } = panel;
    const point = {
      x: column,
      y: row,
      z: trace.z[row][column],
      text: trace.text ? trace.text[row][column] : undefined,
      customdata: trace.customdata ? trace.customdata[row][column] : undefined,
    };
    return hoverLines(trace.hovertemplate || "%{z}", point, this.numberText);
  }

  leave() {
    this.pointing = false;
    this.tip.hidden = true;
    if (this.onHover) this.onHover(null);
  }

  // Where cell (row, column) of the trace on x axis `xRef` is drawn, in the page's coordinates.
  cellCentre(row, column, xRef = "x") {
    const panel = (this.panels || []).find((p) => p.xRef === xRef);
    if (!panel) return null;
    const box = this.div.getBoundingClientRect();
    return [box.left + panel.x(column), box.top + panel.y(row)];
  }
}
