// Each chart's numbers as a table: the text alternative of a picture a screen reader cannot walk,
// and a way for anyone to read or copy the exact numbers. Behind a "Show the numbers as a table"
// toggle under the chart (a <details>), filled in only while it is open, so that a change of head
// costs nothing more with the tables closed. Methods of StepView (element.js).

const ChartTables = {
  tableToggle(name, t) {
    const holder = el("div", { class: "avi-numbers-body" });
    const details = el("details", { class: "avi-numbers", "data-table": name }, el("summary", { text: t.chart_table }), holder);
    details.addEventListener("toggle", () => this.fillTable(name));
    this.tables[name] = { details, holder, shows: null };
    return details;
  },

  // The open tables, after their charts were drawn.
  fillTables() {
    for (const name of Object.keys(this.tables)) this.fillTable(name);
  },

  fillTable(name) {
    const entry = this.tables[name];
    const chart = this.heatmaps[name];
    // The tiles' table is their captions: the habits the server sent, or what the tokens chosen do.
    if (name === "heads" || name === "grid") entry.details.hidden = !this.trace.header.tile_labels && !this.picked.size;
    if (!entry.details.open || !chart.panels) return;
    const shows = `${this.charts[name].dataset.shows}|${this.pickKey()}`;
    if (entry.shows === shows) return;
    entry.shows = shows;
    const label = this.heatmaps[name].surface.getAttribute("aria-label");
    const tables = name === "heads" || name === "grid" ? [this.captionTable(name, label)] : chart.panels.map((panel) => this.panelTable(panel, label, chart.panels.length > 1));
    entry.holder.replaceChildren(...tables);
  },

  // One panel's cells: a row per row label (a token), a column per column label, each number as
  // the worked example prints it; a masked cell as the chart marks it.
  panelTable(panel, label, named) {
    const { trace, xAxis, yAxis } = panel;
    const title = (axis) => (axis.title && axis.title.text ? plainText(axis.title.text) : "");
    const names = (axis, count) => {
      const out = Array.from({ length: count }, (_, i) => String(i));
      (axis.tickvals || []).forEach((value, k) => {
        if (axis.ticktext && Number.isInteger(value) && value >= 0 && value < count) out[value] = plainText(axis.ticktext[k]);
      });
      return out;
    };
    const rows = names(yAxis, panel.rows).map((row, r) => [
      row,
      ...Array.from(trace.z[r], (value, c) => (Number.isFinite(value) ? numberText(value, 4) : plainText((trace.text && trace.text[r][c]) || ""))),
    ]);
    const header = [`${title(yAxis)} \\ ${title(xAxis)}`, ...names(xAxis, panel.columns)];
    return this.table(header, rows, [], "avi-table-chart", named ? `${label}: ${title(xAxis)}` : label);
  },

  // The strip's or the grid's tiles as their captions say: each head's habit, or what the tokens
  // chosen do in it; a row per layer, a column per head.
  captionTable(name, label) {
    const h = this.trace.header;
    const t = h.strings;
    const layers = name === "heads" ? [this.view.layer] : [...Array(h.n_layers).keys()];
    const header = [t.layer, ...Array.from({ length: h.n_heads }, (_, head) => `${t.head} ${head + 1}`)];
    const rows = layers.map((layer) => [`${t.layer} ${layer + 1}`, ...this.tileCaptions(layer).map((caption) => plainText(caption))]);
    return this.table(header, rows, [], "avi-table-chart", label);
  },
};
