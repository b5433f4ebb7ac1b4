// Drawing the charts: each chart's box and its HeatmapChart (heatmap.js), what is drawn when the
// view changes, the hover that links a cell across the steps, the clicks on tiles, and a chart
// saved as an image by Plotly. Methods of StepView (element.js).

const ChartDrawing = {
  // One chart's box and its HeatmapChart: hovering (or focusing, or tapping) a cell of any chart but
  // the strip and the grid outlines the cells it is linked to; clicking (Enter on) a cell of a score
  // or softmax map, or a row of Q or of the context, picks its query; a tile opens its head.
  chart(name, t, label = "") {
    const div = el("div", { class: "avi-chart", "data-chart": name });
    this.charts[name] = div;
    const matrices = this.trace.header.matrix_charts;
    const pickQuery = (hit) => this.setView({ query: hit.row });
    this.heatmaps[name] = new HeatmapChart(div, {
      numberText,
      label,
      cellJoin: t.step_view_cell_join,
      downloadLabel: t.download_chart,
      onHover: name === "heads" || name === "grid" ? null : (point) => this.hover(point && this.linkedCell(name, point)),
      onClick: {
        heads: (hit) => this.pickTile("heads", hit.row, hit.column),
        grid: (hit) => this.pickTile("grid", hit.row, hit.column),
        qkv: (hit) => hit.panel === this.heatmaps.qkv.panels[0] && pickQuery(hit),
        context: pickQuery,
        ...Object.fromEntries(matrices.map((matrix) => [matrix, pickQuery])),
      }[name],
      onEscape: () => this.root.focus(),
      onResize: name === "heads" || name === "grid" ? () => this.tilesResized(name) : null,
      onDownload: (figure) => this.download(name, figure),
    });
    return div;
  },

  // The (query, key) cell that a point of chart `name` stands for: a cell of a score or softmax map
  // is one; a row of Q or of the context is a query (the key linked before stays), a row of K or V
  // a key.
  linkedCell(name, point) {
    if (this.trace.header.matrix_charts.includes(name)) return [point.y, point.x];
    const [query, key] = this.cell || [point.y, point.y];
    return name === "qkv" && point.panel > 0 ? [query, point.y] : [point.y, key];
  },

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
  },

  // Every chart shown is drawn at once (a canvas draws one well within a frame). A chart whose
  // numbers did not change (the strip of heads on a change of head) is not drawn again, nor one
  // on a step that presentation mode hides: it is drawn when its step is shown.
  drawCharts(layer) {
    const v = this.view;
    const look = `${this.trace.id}|${this.shape}|${this.theme.color}|${this.theme.family}|${JSON.stringify(this.trace.header.mark)}`;
    const picks = this.pickKey();
    const keys = { grid: `${look}|${picks}`, heads: `${look}|${v.layer}|${picks}` };
    for (const name of Object.keys(this.charts)) {
      if (!(name in keys) && !layer) continue;
      if (this.trace.header.style.present && this.sections[name].hidden) continue;
      const key = keys[name] || `${look}|${v.layer}|${v.head}`;
      if (this.charts[name].dataset.shows !== key && this.drawOne(name)) this.charts[name].dataset.shows = key;
    }
    if (this.charts.grid) this.heatmaps.grid.outline(this.shapes("grid")); // around the head on show
    this.fillTables();
    this.root.dataset.picked = picks; // the tokens the strip and the grid now show (tests, the bench)
    if (layer) this.root.dataset.ready = this.root.dataset.complete = this.trace.header.view_fields.map((field) => v[field]).join(",");
    else delete this.root.dataset.complete;
  },

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
      mask: () => this.maskFigure(),
    }[name]();
    const where = `L${v.layer + 1}H${v.head + 1}`;
    const layout = figure.layout;
    layout.shapes = this.shapes(name);
    layout.font = { ...layout.font, color: this.theme.color, ...(this.theme.family ? { family: this.theme.family } : {}) };
    if (layout.title && layout.title.text) layout.title = { ...layout.title, text: layout.title.text.replace(this.trace.header.where, where) };
    const div = this.charts[name];
    div.dataset.where = { heads: `L${v.layer + 1}`, grid: "", mask: "" }[name] ?? where;
    return this.heatmaps[name].draw(figure, this.theme);
  },

  // Linked hover: cell (i, j) of any n × n map lights up query row i of Q, key row j of K and V,
  // cell (i, j) of the scores, row i of the softmax and of the context. One redraw per frame.
  hover(cell) {
    this.pendingHover = cell;
    if (this.hoverFrame) return;
    this.hoverFrame = requestAnimationFrame(() => {
      this.hoverFrame = null;
      const target = this.pendingHover;
      if (JSON.stringify(target) === JSON.stringify(this.cell)) return;
      this.highlight(target);
    });
  },

  highlight(cell) {
    this.cell = cell;
    if (cell) this.root.dataset.hover = `${cell[0]},${cell[1]}`;
    else delete this.root.dataset.hover;
    for (const name of ["qkv", ...this.trace.header.matrix_charts, "context"]) this.heatmaps[name].outline(this.shapes(name));
  },

  // What chart `name` outlines: the cell the hover links, and a lesson's revealed answer.
  shapes(name) {
    if (name === "grid") return this.gridOutline();
    return [...this.linkedShapes(name), ...this.answerShapes(name)];
  },

  // A lesson's revealed answer (the header's `mark`, ui/lessons/questions.py Mark): a cell or a
  // row of the softmax weights, or a head's thumbnail in the strip, while the view shows its layer.
  answerShapes(name) {
    const mark = this.trace.header.mark;
    const v = this.view;
    if (!mark || mark.layer !== v.layer) return [];
    const line = { color: this.theme.color, width: 5 };
    const rect = (x0, x1, y0, y1) => ({ type: "rect", name: "answer", xref: "x", yref: "y", x0, x1, y0, y1, line, fillcolor: "rgba(0,0,0,0)" });
    if (name === "heads" && mark.chart === "heads") {
      const tiles = this.tileLayouts && this.tileLayouts.heads;
      if (!tiles) return [];
      const [top, left] = tiles.at(0, mark.head);
      return [rect(left - 0.5, left + tiles.mk - 0.5, top - 0.5, top + tiles.m - 0.5)];
    }
    if (name !== "weights" || mark.chart !== "weights" || mark.head !== v.head) return [];
    const i = mark.query;
    if (mark.key === null) return [rect(-0.5, this.trace.header.key_tokens.length - 0.5, i - 0.5, i + 0.5)];
    return [rect(mark.key - 0.5, mark.key + 0.5, i - 0.5, i + 0.5)];
  },

  // The outlines that link cell (i, j) across the steps (none without a cell).
  linkedShapes(name) {
    if (!this.cell || name === "heads") return [];
    const [i, j] = this.cell;
    const h = this.trace.header;
    const colour = this.theme.color;
    const line = { color: colour, width: 3 };
    const rect = (xref, x0, x1, y0, y1) => ({ type: "rect", xref, yref: "y", x0, x1, y0, y1, line, fillcolor: "rgba(0,0,0,0)" });
    const n = h.key_tokens.length;
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
  },
};
