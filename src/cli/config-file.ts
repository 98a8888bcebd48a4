/** Reading user config files (JSON or YAML) with one-line errors. */
import { readFile } from "node:fs/promises";
import YAML from "yaml";

/** Parse a JSON (.json) or YAML (.yaml/.yml; anchors and `<<` merge keys allowed) file into a plain value. */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? `config file not found: ${path}` : `cannot read config file ${path}: ${(e as Error).message}`);
  }
  try {
    return /\.ya?ml$/i.test(path) ? YAML.parse(text, { merge: true }) : JSON.parse(text);
  } catch (e) {
    throw new Error(`config file ${path} is not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(e as Error).message.split("\n")[0]}`);
  }
}
