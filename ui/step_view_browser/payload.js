// The payload: one run's binary message (viz/step_view.py documents the format) read into its
// header and typed arrays, and the rows of a head's slice of an array, as views without a copy.
// PAYLOAD_MAGIC (viz.step_view.MAGIC) is written ahead of these files by ui/step_view.py.

function decode(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== PAYLOAD_MAGIC) throw new Error(`not a step view payload (${magic})`);
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
