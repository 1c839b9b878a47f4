// A line diff of two texts (longest common subsequence), for comparing script versions.
// Scripts are small; past MAX_CELLS the middle is shown as one replaced block instead.

const MAX_CELLS = 4_000_000;

/** The lines of `text`; a final newline ends the last line rather than starting another. */
export function splitLines(text) {
  if (!text) return [];
  return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
}

/**
 * The lines of `a` and `b` as a list of `{ op, text, a, b }`: `op` is ' ' (in both), '-'
 * (only in a) or '+' (only in b); `a` and `b` are 1-based line numbers (null when absent).
 */
export function lineDiff(a, b) {
  const x = splitLines(a);
  const y = splitLines(b);
  // Common head and tail cost nothing and keep the table small.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head += 1;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head
    && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail += 1;
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const out = [];
  for (let i = 0; i < head; i += 1) out.push({ op: ' ', text: x[i], a: i + 1, b: i + 1 });
  const n = xs.length;
  const m = ys.length;
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    xs.forEach((text, i) => out.push({ op: '-', text, a: head + i + 1, b: null }));
    ys.forEach((text, j) => out.push({ op: '+', text, a: null, b: head + j + 1 }));
  } else {
    // lcs[i][j]: length of the longest common subsequence of xs[i..] and ys[j..].
    const w = m + 1;
    const lcs = new Int32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i -= 1) {
      for (let j = m - 1; j >= 0; j -= 1) {
        lcs[i * w + j] = xs[i] === ys[j] ? lcs[(i + 1) * w + j + 1] + 1
          : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && xs[i] === ys[j]) {
        out.push({ op: ' ', text: xs[i], a: head + i + 1, b: head + j + 1 });
        i += 1;
        j += 1;
      } else if (i < n && (j === m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
        out.push({ op: '-', text: xs[i], a: head + i + 1, b: null });
        i += 1;
      } else {
        out.push({ op: '+', text: ys[j], a: null, b: head + j + 1 });
        j += 1;
      }
    }
  }
  for (let k = tail; k > 0; k -= 1) {
    out.push({ op: ' ', text: x[x.length - k], a: x.length - k + 1, b: y.length - k + 1 });
  }
  return out;
}
