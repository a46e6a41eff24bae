import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './process.js';

/**
 * The first fenced ```lang block under the heading `heading` of a file in docs/, with each [from, to] of
 * `replace` applied (the hosts and ports of the test). Throws when a replacement finds nothing: a test
 * runs the snippet the docs show, and a snippet changed under it fails loudly instead of drifting.
 */
export function docsSnippet(file: string, heading: string, lang: string, replace: [string, string][]): string {
  const text = readFileSync(join(ROOT, 'docs', file), 'utf8');
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`docs/${file}: no heading ${heading}`);
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(text.slice(at));
  if (!block) throw new Error(`docs/${file}: no ${lang} block under ${heading}`);
  let snippet = block[1]!;
  for (const [from, to] of replace) {
    if (!snippet.includes(from)) throw new Error(`docs/${file} (${heading}): the snippet no longer holds ${JSON.stringify(from)}`);
    snippet = snippet.replaceAll(from, to);
  }
  return snippet;
}
