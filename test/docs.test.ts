/**
 * README.md and docs/ have no dangling references: every relative Markdown link and image names
 * a file of the repository, and every `#anchor` names a heading of its target (GitHub's rule:
 * lower case, punctuation dropped, spaces to hyphens).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as nodePath from "node:path";
import { describe, test } from "node:test";

const ROOT = nodePath.join(import.meta.dirname, "..");

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = nodePath.join(dir, e.name);
    return e.isDirectory() ? markdownFiles(p) : e.name.endsWith(".md") ? [p] : [];
  });
}

/** GitHub's anchor of a heading. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replace(/ /g, "-");
}

/** Anchors of a Markdown text's headings (outside code fences). */
function anchorsOf(text: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    else if (!fenced && /^#{1,6} /.test(line)) out.add(headingAnchor(line.replace(/^#+ /, "")));
  }
  return out;
}

/** Relative link targets of a Markdown text (outside code fences and inline code). */
export function relativeLinks(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/i.test(t));
}

/** Links of the files that name no file or no heading, as "file: target" lines. */
export function danglingLinks(files: { path: string; text: string }[], read: (path: string) => string | null): string[] {
  const bad: string[] = [];
  for (const { path, text } of files) {
    for (const target of relativeLinks(text)) {
      const [file, anchor] = target.split("#");
      const resolved = file ? nodePath.resolve(nodePath.dirname(path), decodeURIComponent(file)) : path;
      const content = file ? read(resolved) : text;
      if (content === null) bad.push(`${nodePath.relative(ROOT, path)}: ${target} (no such file)`);
      else if (anchor && resolved.endsWith(".md") && !anchorsOf(content).has(anchor)) bad.push(`${nodePath.relative(ROOT, path)}: ${target} (no such heading)`);
    }
  }
  return bad;
}

const readIfExists = (p: string): string | null => (existsSync(p) ? (p.endsWith(".md") ? readFileSync(p, "utf8") : "") : null);

describe("documentation links", () => {
  test("every relative link in README.md and docs/ resolves", () => {
    const paths = [nodePath.join(ROOT, "README.md"), ...markdownFiles(nodePath.join(ROOT, "docs"))];
    const files = paths.map((p) => ({ path: p, text: readFileSync(p, "utf8") }));
    assert.ok(files.length >= 5);
    assert.deepEqual(danglingLinks(files, readIfExists), []);
  });

  test("the check finds a missing file and a missing heading, and accepts good links", () => {
    const at = (p: string) => nodePath.join(ROOT, p);
    const pages: Record<string, string> = { [at("docs/a.md")]: "# Title: one, two\n\n## Second part\n" };
    const files = [{ path: at("README.md"), text: "[a](docs/a.md#title-one-two) [b](docs/a.md#second-part) [c](docs/b.md) [d](docs/a.md#nope) [e](#here)\n\n## Here\n`[f](x.md)`" }];
    assert.deepEqual(danglingLinks(files, (p) => pages[p] ?? null), ["README.md: docs/b.md (no such file)", "README.md: docs/a.md#nope (no such heading)"]);
  });
});
