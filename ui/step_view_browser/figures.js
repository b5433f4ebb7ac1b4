// The five steps' figures: each chart's template from the header (the figure viz built, without a
// head's numbers) filled in with the numbers of the view's layer and head, as viz's builders fill
// them (the strip's and the grid's are tiles.js's). Methods of StepView (element.js).

const ChartFigures = {
  // A chart's figure to fill in. Plotly's theme (layout.template), which only Plotly reads when it
  // saves the chart, comes once for all charts and is shared rather than copied.
  template(name) {
    const { data, layout } = this.trace.header.templates[name];
    return { data: structuredClone(data), layout: { ...structuredClone(layout), template: this.trace.header.plotly_template } };
  },

  cellTexts(rows) {
    return rows.map((values) => Array.from(values, (value) => (Number.isFinite(value) ? numberText(value, 2) : "")));
  },

  qkvFigure(layer) {
    const figure = this.template("qkv");
    const v = this.view;
    const h = this.trace.header;
    let largest = 0;
    ["q", "k", "v"].forEach((name, index) => {
      const labels = index ? h.key_labels : h.labels; // K and V: a row per key (the source's, in cross-attention)
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
  },

  vectorsFigure(name, array) {
    const figure = this.template(name);
    const labels = this.trace.header.labels;
    const rows = rowsOf(array, this.view.head);
    const trace = figure.data[0];
    trace.z = rows;
    trace.customdata = rows.map((values, i) => Array.from(values, () => labels[i]));
    if (this.trace.header.show_values.context) trace.text = this.cellTexts(rows);
    return figure;
  },

  // The causal mask M (the same for every layer and head): 0 where the query may look at the key,
  // −∞ where it may not, which the chart marks as every masked cell (viz.heatmaps.cell_texts).
  maskFigure() {
    const figure = this.template("mask");
    const h = this.trace.header;
    const n = h.key_labels.length;
    const mask = this.trace.mask.data;
    const show = h.show_values.matrix;
    const trace = figure.data[0];
    trace.z = h.labels.map((_, i) => Float32Array.from(h.key_labels, (_, j) => (mask[i * n + j] ? 0 : NaN)));
    trace.customdata = h.labels.map((query) => h.key_labels.map((key) => [query, key]));
    trace.text = trace.z.map((values) => Array.from(values, (value) => (Number.isFinite(value) ? (show ? numberText(value, 2) : "") : h.mask_mark)));
    trace.texttemplate = "%{text}";
    return figure;
  },

  matrixFigure(name, array, masked) {
    const figure = this.template(name);
    const labels = this.trace.header.labels;
    const keyLabels = this.trace.header.key_labels;
    const mask = masked ? this.trace.mask : null;
    const n = keyLabels.length;
    const raw = rowsOf(array, this.view.head);
    const isMasked = (i, j, value) => !Number.isFinite(value) || (mask !== null && mask.data[i * n + j] === 0);
    const rows = raw.map((values) => (values.every(Number.isFinite) ? values : Array.from(values, (x) => (Number.isFinite(x) ? x : NaN))));
    const trace = figure.data[0];
    trace.z = rows;
    trace.customdata = labels.map((query) => keyLabels.map((key) => [query, key]));
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
  },
};
