/** Reading user config files (JSON or YAML) with one-line errors. */
import { existsSync } from "node:fs";
import { readUserFileSync } from "./atomic.ts";
import YAML from "yaml";

/** Parse a JSON (.json) or YAML (.yaml/.yml; anchors and `<<` merge keys allowed) file into a plain value. */
export async function readConfigFile(path: string): Promise<unknown> {
  if (!existsSync(path)) throw new Error(`config file not found: ${path}`);
  // a regular file of bounded size only (16 MiB): never a device such as /dev/zero
  const text = readUserFileSync(path, 16 * 2 ** 20, "config file");
  try {
    return /\.ya?ml$/i.test(path) ? YAML.parse(text, { merge: true }) : JSON.parse(text);
  } catch (e) {
    throw new Error(`config file ${path} is not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(e as Error).message.split("\n")[0]}`);
  }
}
