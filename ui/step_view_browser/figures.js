// The charts' figures: each chart's template from the header (the figure viz built, without a
// head's numbers) filled in with the numbers of the view's layer and head, as viz's builders fill
// them. Methods of StepView (element.js).

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
  },

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
  },

  // A layer's tiles as the strip and the grid show them: every weight, or the tokens chosen.
  tileStrip(layer) {
    return this.picked.size ? this.pickedStrip(layer) : this.trace.strips[layer];
  },

  // A layer's captions: each head's habit (the server's), or what the tokens chosen do in it.
  tileCaptions(layer) {
    if (this.picked.size) return this.pickedCaptions(layer);
    const captions = this.trace.header.tile_labels;
    return captions ? captions[layer] : [];
  },

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
  },

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
  },
};
