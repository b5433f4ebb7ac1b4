// The tiles: every head of a layer (the strip) and of every layer (the grid) as thumbnails of their
// softmax weights, one figure each, tiled from the payload's strips. Where the chart is too narrow
// for a layer's heads side by side at MIN_TILE_PX (a phone), they wrap onto more rows of fewer
// tiles, each captioned with its head. A click on a tile opens its head. Methods of StepView
// (element.js).

const MIN_TILE_PX = 56; // a thumbnail narrower than this wraps its layer's heads onto more rows
const COLOUR_BAR_PX = 90; // a little more than the colour bar and its labels take beside the tiles

const TileCharts = {
  // Where the tiles of `layers` go in chart `name`: `columns` tiles a row, each layer on `rowsPer`
  // rows of them, in cells of the tiled array (`stride` rows and `keyStride` columns apart: a tile
  // of m × mk cells and the gap; m = mk but in cross-attention).
  tileLayout(name, layers) {
    const h = this.trace.header;
    const m = Math.ceil(h.tokens.length / h.grid_block);
    const mk = Math.ceil(h.key_tokens.length / h.grid_block);
    const gap = h.grid_gap;
    const stride = m + gap;
    const keyStride = mk + gap;
    const { margin } = h.templates[name].layout;
    const room = (this.heatmaps[name].boxWidth || this.charts[name].clientWidth) - margin.l - margin.r - COLOUR_BAR_PX;
    const cellPx = (columns) => room / (columns * keyStride - gap);
    let columns = h.n_heads;
    while (columns > 1 && cellPx(columns) * mk < MIN_TILE_PX) columns--;
    const rowsPer = Math.ceil(h.n_heads / columns);
    columns = Math.ceil(h.n_heads / rowsPer); // as even as the rows allow: 4 heads as 2 × 2, not 3 + 1
    // Wrapped, one layer's rows of tiles are set apart from the next by half a tile more.
    const layerStride = rowsPer * stride + (rowsPer > 1 ? Math.ceil(m / 2) : 0);
    return {
      m,
      mk,
      stride,
      keyStride,
      columns,
      rowsPer,
      layerStride,
      layers,
      cellPx: cellPx(columns),
      wraps: rowsPer > 1,
      size: [(layers.length - 1) * layerStride + rowsPer * stride - gap, columns * keyStride - gap],
      // the top-left cell [row, column] of the tile of `head` of the k-th layer shown
      at: (k, head) => [k * layerStride + Math.floor(head / columns) * stride, (head % columns) * keyStride],
      // the layer, head, query and key of cell (row, column), or null in a gap
      find: (row, column) => {
        const k = Math.floor(row / layerStride);
        const within = row - k * layerStride;
        const [tileRow, query] = [Math.floor(within / stride), within % stride];
        const [tileColumn, key] = [Math.floor(column / keyStride), column % keyStride];
        const head = tileRow * columns + tileColumn;
        if (query >= m || key >= mk || tileRow >= rowsPer || head >= h.n_heads || k >= layers.length) return null;
        return { layer: layers[k], head, query, key };
      },
    };
  },

  // The strip or the grid: the layers' tiles laid out as `tileLayout` says, captions in their
  // corners, the hover's layer, head, query and key per cell.
  tilesFigure(name, layers) {
    const figure = this.template(name);
    const h = this.trace.header;
    const t = h.strings;
    const tiles = this.tileLayout(name, layers);
    this.tileLayouts = { ...this.tileLayouts, [name]: tiles };
    const { m, mk, stride, keyStride } = tiles;
    const [rows, columns] = tiles.size;
    const z = Array.from({ length: rows }, () => new Float32Array(columns).fill(NaN));
    const captions = [];
    const style = (figure.layout.annotations || [])[0];
    layers.forEach((layer, k) => {
      const strip = rowsOf(this.tileStrip(layer), 0); // (m, heads·(mk+gap)-gap)
      const texts = this.tileCaptions(layer);
      for (let head = 0; head < h.n_heads; head++) {
        const [top, left] = tiles.at(k, head);
        for (let i = 0; i < m; i++) z[top + i].set(strip[i].subarray(head * keyStride, head * keyStride + mk), left);
        // Wrapped, the axis cannot name the heads: each caption does.
        const text = tiles.wraps ? [`${t.head} ${head + 1}`, texts[head]].filter(Boolean).join(" · ") : texts[head];
        if (style) captions.push({ ...style, x: left - 0.5, y: top - 0.5, text: text || "" });
      }
    });
    const trace = figure.data[0];
    trace.z = z;
    trace.customdata = this.tileHover(z, tiles, name === "grid" ? h.grid_tokens : h.strip_tokens);
    figure.layout.annotations = captions;
    const centre = (k) => k * tiles.layerStride + ((tiles.rowsPer - 1) * stride + m - 1) / 2;
    figure.layout.yaxis = { ...figure.layout.yaxis, tickvals: layers.map((_, k) => centre(k)), ticktext: layers.map((layer) => `${t.layer} ${layer + 1}`) };
    if (tiles.wraps) {
      figure.layout.xaxis = { ...figure.layout.xaxis, tickvals: [], ticktext: [] };
      const { t: top, b: bottom } = figure.layout.margin;
      figure.layout.height = Math.round(top + bottom + rows * tiles.cellPx);
    }
    return figure;
  },

  headsFigure() {
    return this.tilesFigure("heads", [this.view.layer]);
  },

  gridFigure() {
    return this.tilesFigure("grid", [...Array(this.trace.header.n_layers).keys()]);
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

  // As viz.grid.hover_data: per cell of the tiles, [layer, head] (1-based), then the query and key
  // (their labels, or else the first position of the block a pooled cell averages).
  tileHover(z, tiles, withTokens) {
    const h = this.trace.header;
    const block = h.grid_block;
    return z.map((values, r) =>
      Array.from(values, (_, c) => {
        const cell = tiles.find(r, c);
        if (!cell) return withTokens ? [0, 0, "", ""] : [0, 0, 0, 0];
        const { layer, head, query, key } = cell;
        if (withTokens) return [layer + 1, head + 1, h.labels[query], h.key_labels[key]];
        return [layer + 1, head + 1, query * block + 1, key * block + 1];
      }),
    );
  },

  // A click on a tile opens its head. From the grid, the page goes up to the steps.
  pickTile(name, row, column) {
    const cell = this.tileLayouts[name].find(row, column);
    if (!cell) return;
    this.setView({ layer: cell.layer, head: cell.head });
    if (name === "grid") this.sections.qkv.scrollIntoView({ behavior: "smooth", block: "start" });
  },

  // viz's outline of layer 1 head 1 (the grid's template), moved to the head on show.
  gridOutline() {
    const tiles = this.tileLayouts && this.tileLayouts.grid;
    if (!tiles) return [];
    const [dy, dx] = tiles.at(this.view.layer, this.view.head);
    const outline = this.trace.header.templates.grid.layout.shapes || [];
    return outline.map((s) => ({ ...s, x0: s.x0 + dx, x1: s.x1 + dx, y0: s.y0 + dy, y1: s.y1 + dy }));
  },

  // A chart of tiles whose box grew or shrank past a wrap is drawn anew, wrapped as its width allows.
  tilesResized(name) {
    const tiles = this.tileLayouts && this.tileLayouts[name];
    if (!tiles || this.tileLayout(name, tiles.layers).columns === tiles.columns) return false;
    this.drawOne(name);
    return true;
  },
};
