/** Small DOM helpers for the viewer page. */

/** Create an element with attributes and children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** A titled panel. */
export function panel(title: string, cls = ""): { root: HTMLElement; body: HTMLElement } {
  const body = el("div");
  const root = el("section", { class: `panel ${cls}`.trim() }, el("h2", {}, title), body);
  return { root, body };
}

/** Draw an image [H, W, C] in [0, 1] into a canvas of H x W pixels. */
export function drawImage(canvas: HTMLCanvasElement, image: ArrayLike<number>, size: number, channels: number): void {
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d")!;
  const data = ctx.createImageData(size, size);
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) {
      const v = image[p * channels + (channels === 3 ? c : 0)];
      data.data[p * 4 + c] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
    data.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
}

/** A number for display: 3 significant digits, exponent notation for tiny or huge values. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(3)).toString();
}

/** Show a message in the page's error box (and the console). */
export function showError(message: string): void {
  const box = document.getElementById("error")!;
  box.hidden = false;
  box.textContent = message;
  console.error(message);
}

/** Set the status line in the header. */
export function setStatus(text: string): void {
  document.getElementById("status")!.textContent = text;
}
