// A chart's cells for the keyboard and for a screen reader: the WAI-ARIA grid pattern, one tab stop
// per chart. The canvas and the SVG are hidden from assistive technology; a focusable surface over
// them is the grid, and the one cell it holds is the cell in focus (the grid's aria-rowcount and
// aria-colcount, and the cell's aria-rowindex and aria-colindex, say where it lies in the whole).
// Arrow keys move the cell (on to the next panel at a row's end: Q, K, V), Home and End go to the
// ends of its row, Enter or Space does what a click does, Escape leaves the chart. The cell's
// accessible name is its hover text in the page's language, and it is outlined and linked across
// the steps as the pointer's cell is. Methods of HeatmapChart (heatmap.js).

let cellIds = 0; // each cell in focus is a new element: a screen reader announces a new active descendant

const ChartCells = {
  gridSurface() {
    this.surface = document.createElement("div");
    this.surface.className = "avi-surface";
    this.surface.tabIndex = 0;
    this.surface.setAttribute("role", "grid");
    this.surface.setAttribute("aria-readonly", "true");
    this.gridRow = document.createElement("div");
    this.gridRow.setAttribute("role", "row");
    const placeholder = document.createElement("div"); // a row holds a cell; the focus names it (holdCell)
    placeholder.setAttribute("role", "gridcell");
    this.gridRow.append(placeholder);
    this.surface.append(this.gridRow);
    this.focusCell = null; // {p, row, column}: panel index, row and column of the cell in focus
    this.focusMarks = svg("g", { class: "avi-focus-marks" });
    this.surface.addEventListener("keydown", (event) => this.cellKey(event));
    // A click focuses the surface too; only a keyboard's focus (:focus-visible) picks a cell at once.
    this.surface.addEventListener("focus", () => this.surface.matches(":focus-visible") && this.moveFocus(this.currentCell()));
    this.surface.addEventListener("blur", () => this.focusOut());
    return this.surface;
  },

  // The cell in focus last, within the chart as drawn now (another sentence may be shorter), or
  // else the first.
  currentCell() {
    if (!this.focusCell || !this.panels || !this.panels.length) return this.firstCell();
    const { p, row, column } = this.focusCell;
    const at = Math.min(p, this.panels.length - 1);
    const panel = this.panels[at];
    return { p: at, row: Math.min(row, panel.rows - 1), column: Math.min(column, panel.columns - 1) };
  },

  // The first finite cell, row by row, of the first panel that has one.
  firstCell() {
    for (let p = 0; p < (this.panels || []).length; p++) {
      const { rows, columns, trace } = this.panels[p];
      for (let row = 0; row < rows; row++) for (let column = 0; column < columns; column++) if (Number.isFinite(trace.z[row][column])) return { p, row, column };
    }
    return null;
  },

  cellKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || !this.panels) return;
    if (event.key === "Escape") {
      event.preventDefault();
      this.surface.blur();
      if (this.onEscape) this.onEscape();
      return;
    }
    const cell = this.currentCell();
    if (!cell) return;
    const arrows = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    let next = null;
    if (event.key in arrows) next = this.stepFrom(cell, ...arrows[event.key]);
    else if (event.key === "Home") next = this.stepFrom({ ...cell, p: 0, column: -1 }, 0, 1);
    else if (event.key === "End") next = this.stepFrom({ ...cell, p: this.panels.length - 1, column: this.panels[this.panels.length - 1].columns }, 0, -1);
    else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.moveFocus(cell);
      if (this.onClick) this.onClick(this.hitAt(cell));
      return;
    } else return;
    event.preventDefault(); // the step view's own arrow keys (layer, head) wait outside the chart
    this.moveFocus(next || cell);
  },

  // The next finite cell from `cell`, `down` rows down the screen or `right` columns right, on to
  // the next panel past a row's end; null at the chart's edge.
  stepFrom(cell, down, right) {
    let { p, row, column } = cell;
    for (;;) {
      const panel = this.panels[p];
      row += panel.reversed ? down : -down;
      column += right;
      if (column < 0 && p > 0) [p, column] = [p - 1, this.panels[p - 1].columns - 1];
      else if (column >= panel.columns && p < this.panels.length - 1) [p, column] = [p + 1, 0];
      const at = this.panels[p];
      if (row < 0 || row >= at.rows || column < 0 || column >= at.columns) return null;
      if (Number.isFinite(at.trace.z[row][column])) return { p, row, column };
    }
  },

  hitAt({ p, row, column }) {
    const panel = this.panels[p];
    return { panel, row, column, value: panel.trace.z[row][column], x: panel.x(column), y: panel.y(row) };
  },

  // Focus on `cell`: the grid's cell is now it, its hover label beside it, its outline here and
  // the linked outlines in the other steps.
  moveFocus(cell) {
    if (!cell || !this.panels || !this.panels[cell.p]) return;
    this.focusCell = cell;
    this.surface.setAttribute("aria-activedescendant", this.holdCell(cell).id);
    this.show(this.hitAt(cell));
    this.markFocus();
  },

  // The grid's one cell, made anew as `cell` (a new id: a screen reader announces a new active
  // descendant), named as its hover reads and placed in the whole by its row and column indices.
  holdCell(cell) {
    const panel = this.panels[cell.p];
    const before = this.panels.slice(0, cell.p).reduce((sum, other) => sum + other.columns, 0);
    this.surface.setAttribute("aria-rowcount", String(Math.max(...this.panels.map((other) => other.rows))));
    this.surface.setAttribute("aria-colcount", String(this.panels.reduce((sum, other) => sum + other.columns, 0)));
    const node = document.createElement("div");
    node.id = `avi-cell-${++cellIds}`;
    node.setAttribute("role", "gridcell");
    node.setAttribute("aria-colindex", String(before + cell.column + 1));
    node.textContent = this.cellLines(panel, cell.row, cell.column).join(this.cellJoin);
    this.gridRow.setAttribute("aria-rowindex", String(cell.row + 1));
    this.gridRow.replaceChildren(node);
    return node;
  },

  // After a redraw (another head, another sentence) the cell in focus keeps its place and reads its
  // new number. Out of focus nothing is named: the focus names its cell when it comes.
  refreshFocus() {
    if (document.activeElement === this.surface && this.focusCell) {
      this.focusCell = this.currentCell();
      this.surface.setAttribute("aria-activedescendant", this.holdCell(this.focusCell).id);
    }
    this.markFocus();
  },

  focusOut() {
    this.focusMarks.replaceChildren();
    if (this.focusCell) this.leave();
  },

  // The cell in focus, outlined in dashes (the linked outlines are solid): its shape, not its colour,
  // tells it apart.
  markFocus() {
    this.focusMarks.replaceChildren();
    if (document.activeElement !== this.surface || !this.focusCell || !this.panels) return;
    const { panel, x, y } = this.hitAt(this.focusCell);
    const [w, h] = [(panel.right - panel.left) / panel.columns, (panel.bottom - panel.top) / panel.rows];
    const box = { x: x - w / 2, y: y - h / 2, width: w, height: h, fill: "none" };
    this.focusMarks.append(
      svg("rect", { ...box, class: "avi-focus-halo", stroke: this.theme.background || "#fff", "stroke-width": 5 }),
      svg("rect", { ...box, class: "avi-focus", stroke: this.theme.color, "stroke-width": 2.5, "stroke-dasharray": "4 3" }),
    );
  },
};

Object.assign(HeatmapChart.prototype, ChartCells);
