// Numbers and strings as the page prints them: `numberText` prints exactly what Python's
// viz.style.number_text prints (tests/e2e/test_step_view_numbers.py holds them to it), `fill`
// fills a translated string's placeholders ({name}, {name:.2f}) as Python's str.format does.

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

export { numberText }; // for tests/e2e/test_step_view_numbers.py
