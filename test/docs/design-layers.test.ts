// Proves that the layer table in docs/design.md is true of the code: it parses that table and
// every import of every .ts file under src/ (static imports, `export ... from`, and dynamic
// `import('...')`), and fails, naming the file and the import, on an import of a layer the
// importing folder's row does not allow, on an import that reaches into another layer other
// than through its index.ts (unless listed below as a named exception), on a folder under src/
// without a row, a row without a folder, an allowance no file uses, or a cycle in the table.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');
const DESIGN = join(ROOT, 'docs/design.md');

/**
 * Imports that break the "only through index.ts" rule, or leave src/, today. Each names the
 * importing file (relative to the repository) and the import as written (for a dynamic import
 * whose argument is not a string literal: `import(<argument>)`). The layer rule still applies
 * to them: an exception only excuses the path. An exception that no longer matches an import
 * fails the test, so this list shrinks as the code is fixed.
 */
const EXCEPTIONS: readonly { readonly file: string; readonly specifier: string }[] = [
  // Type-only, and every name it takes is exported by core/index.ts too: a leftover from
  // before core/ had an index, which '../core/index.ts' would replace as it is.
  { file: 'src/codec/message-codec.ts', specifier: '../core/types.ts' },
  // A cluster's own state machine: the user's module, named at run time (createCluster's
  // stateMachine.module), outside src/ by design.
  { file: 'src/runtime/state-machine-module.ts', specifier: 'import(href)' },
];

interface LayerRow {
  /** `core/` for a folder under src/, `index.ts` for a file directly in src/. */
  readonly layer: string;
  readonly mayImport: readonly string[];
  readonly line: number;
}

/**
 * The layer table: the first Markdown table whose header is `| layer | owns | may import |`.
 * Column 1 holds one backticked name, column 3 the word `nothing` or backticked folder names
 * ending in `/` (text outside backticks is a note and is ignored).
 */
function parseLayerTable(markdown: string): LayerRow[] {
  const lines = markdown.split('\n');
  const header = lines.findIndex((l) => /^\|\s*layer\s*\|\s*owns\s*\|\s*may import\s*\|\s*$/.test(l));
  if (header < 0) throw new Error('docs/design.md has no table with the header "| layer | owns | may import |"');
  const rows: LayerRow[] = [];
  for (let i = header + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const cells = lines[i]!.trim().slice(1, -1).split('|');
    if (cells.length !== 3) throw new Error(`docs/design.md:${i + 1}: a layer row has 3 cells (no "|" inside one), found ${cells.length}`);
    const names = [...cells[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    if (names.length !== 1) throw new Error(`docs/design.md:${i + 1}: the first cell names one layer in backticks`);
    const allowedCell = cells[2]!.trim();
    const allowed = [...allowedCell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    if (allowed.length === 0 && allowedCell !== 'nothing') throw new Error(`docs/design.md:${i + 1}: "may import" is "nothing" or backticked folder names`);
    for (const a of allowed) if (!a.endsWith('/')) throw new Error(`docs/design.md:${i + 1}: "${a}" in "may import" is not a folder name ending in /`);
    rows.push({ layer: names[0]!, mayImport: allowed, line: i + 1 });
  }
  return rows;
}

// ─── Finding imports ─────────────────────────────────────────────────────────────────

interface Token {
  readonly kind: 'id' | 'str' | 'num' | 'punct' | 'tmpl' | 'regex';
  readonly text: string;
  readonly pos: number;
}

const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

/**
 * Splits TypeScript source into the tokens the import rules need, skipping comments, so that
 * an import written in a comment or inside a string or template never counts. A `/` starts a
 * regular expression where an expression may start (after an operator or a keyword), as in
 * JavaScript's own grammar; the scanner's check below catches a wrong guess.
 */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  /** Open braces per template expression being scanned, innermost last. */
  const braceDepths: number[] = [];
  let i = 0;
  const n = source.length;
  const scanTemplate = (from: number): number => {
    // From just after a backtick or a `}` closing an expression, to after the closing
    // backtick, or into the next `${` (pushing a new expression).
    let j = from;
    while (j < n) {
      const c = source[j]!;
      if (c === '\\') j += 2;
      else if (c === '`') return j + 1;
      else if (c === '$' && source[j + 1] === '{') {
        braceDepths.push(0);
        return j + 2;
      } else j++;
    }
    return j;
  };
  while (i < n) {
    const c = source[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '/' && source[i + 1] === '/') {
      while (i < n && source[i] !== '\n') i++;
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < n && source[j] !== c && source[j] !== '\n') j += source[j] === '\\' ? 2 : 1;
      tokens.push({ kind: 'str', text: source.slice(i + 1, j), pos: i });
      i = j + 1;
    } else if (c === '`') {
      tokens.push({ kind: 'tmpl', text: '`', pos: i });
      i = scanTemplate(i + 1);
    } else if (c === '}' && braceDepths.length > 0 && braceDepths[braceDepths.length - 1] === 0) {
      braceDepths.pop();
      tokens.push({ kind: 'tmpl', text: '}`', pos: i });
      i = scanTemplate(i + 1);
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(source[j]!)) j++;
      tokens.push({ kind: 'id', text: source.slice(i, j), pos: i });
      i = j;
    } else if (/\d/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w.]/.test(source[j]!)) j++;
      tokens.push({ kind: 'num', text: source.slice(i, j), pos: i });
      i = j;
    } else if (c === '/' && regexMayStart(tokens[tokens.length - 1])) {
      const end = regexEnd(source, i);
      if (end === undefined) {
        tokens.push({ kind: 'punct', text: c, pos: i });
        i++;
      } else {
        tokens.push({ kind: 'regex', text: source.slice(i, end), pos: i });
        i = end;
      }
    } else {
      if (braceDepths.length > 0) {
        if (c === '{') braceDepths[braceDepths.length - 1]!++;
        else if (c === '}') braceDepths[braceDepths.length - 1]!--;
      }
      tokens.push({ kind: 'punct', text: c, pos: i });
      i++;
    }
  }
  return tokens;
}

function regexMayStart(prev: Token | undefined): boolean {
  if (prev === undefined) return true;
  if (prev.kind === 'id') return REGEX_AFTER_WORDS.has(prev.text);
  if (prev.kind === 'punct') return prev.text !== ')' && prev.text !== ']';
  return false;
}

/** The end of the regular expression literal starting at `from`, or undefined if the line ends first. */
function regexEnd(source: string, from: number): number | undefined {
  let inClass = false;
  for (let j = from + 1; j < source.length; j++) {
    const c = source[j]!;
    if (c === '\n') return undefined;
    if (c === '\\') j++;
    else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (c === '/' && !inClass) {
      let k = j + 1;
      while (k < source.length && /[a-z]/.test(source[k]!)) k++;
      return k;
    }
  }
  return undefined;
}

interface FoundImport {
  /** The module specifier, or `import(<argument>)` for a dynamic import of a computed name. */
  readonly specifier: string;
  readonly literal: boolean;
  readonly line: number;
}

function findImports(source: string): FoundImport[] {
  const tokens = tokenize(source);
  const found: FoundImport[] = [];
  const lineOf = (pos: number): number => source.slice(0, pos).split('\n').length;
  const is = (k: number, kind: Token['kind'], text?: string): boolean => tokens[k]?.kind === kind && (text === undefined || tokens[k]!.text === text);
  /** The specifier of `from '...'` at or after k, before the statement's end. */
  const fromClause = (k: number): number | undefined => {
    for (let j = k; j < tokens.length && !is(j, 'punct', ';'); j++) {
      if (is(j, 'id', 'from') && is(j + 1, 'str')) return j + 1;
    }
    return undefined;
  };
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'id' || is(k - 1, 'punct', '.')) continue;
    if (t.text === 'import') {
      if (is(k + 1, 'punct', '(')) {
        if (is(k + 2, 'str') && (is(k + 3, 'punct', ')') || is(k + 3, 'punct', ','))) {
          found.push({ specifier: tokens[k + 2]!.text, literal: true, line: lineOf(t.pos) });
        } else {
          let depth = 0;
          let j = k + 1;
          for (; j < tokens.length; j++) {
            if (is(j, 'punct', '(')) depth++;
            else if (is(j, 'punct', ')') && --depth === 0) break;
          }
          const argument = source.slice(tokens[k + 2]!.pos, tokens[j]!.pos).replace(/\s+/g, '');
          found.push({ specifier: `import(${argument})`, literal: false, line: lineOf(t.pos) });
        }
      } else if (is(k + 1, 'str')) {
        found.push({ specifier: tokens[k + 1]!.text, literal: true, line: lineOf(t.pos) });
      } else if (is(k + 1, 'id') || is(k + 1, 'punct', '{') || is(k + 1, 'punct', '*')) {
        const s = fromClause(k + 1);
        if (s !== undefined) found.push({ specifier: tokens[s]!.text, literal: true, line: lineOf(t.pos) });
      }
    } else if (t.text === 'export') {
      let j = k + 1;
      if (is(j, 'id', 'type')) j++;
      if (is(j, 'punct', '*')) {
        j++;
        if (is(j, 'id', 'as')) j += 2;
      } else if (is(j, 'punct', '{')) {
        while (j < tokens.length && !is(j, 'punct', '}')) j++;
        j++;
      } else continue;
      if (is(j, 'id', 'from') && is(j + 1, 'str')) found.push({ specifier: tokens[j + 1]!.text, literal: true, line: lineOf(t.pos) });
    }
  }
  return found;
}

// ─── The code as it is ───────────────────────────────────────────────────────────────

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The layer a path under src/ belongs to (`core/`, or `index.ts` for a file directly in src/); undefined outside src/. */
function layerOf(path: string): string | undefined {
  const rel = relative(SRC, path);
  if (rel.startsWith('..') || resolve(SRC, rel) !== path) return undefined;
  const parts = rel.split(sep);
  return parts.length === 1 ? parts[0]! : `${parts[0]!}/`;
}

interface ImportEdge {
  /** The importing file, relative to the repository. */
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly from: string;
  /** The layer imported; undefined if the import leaves src/ or cannot be resolved. */
  readonly to: string | undefined;
  /** Whether it names the imported layer's index.ts (always true within a layer). */
  readonly throughIndex: boolean;
  readonly literal: boolean;
}

function importEdges(): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const path of sourceFiles(SRC)) {
    const from = layerOf(path)!;
    const file = relative(ROOT, path).split(sep).join('/');
    for (const imp of findImports(readFileSync(path, 'utf8'))) {
      if (imp.literal && !imp.specifier.startsWith('.')) continue; // a package (node:fs, piscina)
      const target = imp.literal ? resolve(dirname(path), imp.specifier) : undefined;
      const to = target === undefined ? undefined : layerOf(target);
      const throughIndex = to === from || (to !== undefined && to.endsWith('/') && target === join(SRC, to, 'index.ts'));
      edges.push({ file, line: imp.line, specifier: imp.specifier, from, to, throughIndex, literal: imp.literal });
    }
  }
  return edges;
}

function isException(e: ImportEdge): boolean {
  return EXCEPTIONS.some((x) => x.file === e.file && x.specifier === e.specifier);
}

function describeEdge(e: ImportEdge): string {
  return `${e.file}:${e.line} imports '${e.specifier}'`;
}

// ─── The checks ──────────────────────────────────────────────────────────────────────

describe('the layer table in docs/design.md', () => {
  const rows = parseLayerTable(readFileSync(DESIGN, 'utf8'));
  const rowOf = new Map(rows.map((r) => [r.layer, r]));
  const layers = new Set(readdirSync(SRC).map((name) => (statSync(join(SRC, name)).isDirectory() ? `${name}/` : name)).filter((l) => l.endsWith('/') || l.endsWith('.ts')));
  const edges = importEdges();

  it('has one row for each folder under src/ (and each file directly in it), and none for anything else', () => {
    const problems: string[] = [];
    for (const layer of layers) if (!rowOf.has(layer)) problems.push(`src/${layer} has no row in the layer table`);
    for (const r of rows) {
      if (!layers.has(r.layer)) problems.push(`docs/design.md:${r.line}: the row of \`${r.layer}\` names nothing that exists under src/`);
      if (rows.filter((x) => x.layer === r.layer).length > 1) problems.push(`docs/design.md:${r.line}: \`${r.layer}\` has more than one row`);
      for (const a of r.mayImport) {
        if (!layers.has(a)) problems.push(`docs/design.md:${r.line}: \`${r.layer}\` may import \`${a}\`, which is no folder under src/`);
        if (a === r.layer) problems.push(`docs/design.md:${r.line}: \`${r.layer}\` lists itself (files within a layer import each other freely)`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('allows every import from one layer into another', () => {
    const problems = edges
      .filter((e) => e.to !== undefined && e.to !== e.from && !(rowOf.get(e.from)?.mayImport.includes(e.to) ?? false))
      .map((e) => `${describeEdge(e)}: ${e.from} may not import ${e.to} (its row in docs/design.md does not list it)`);
    expect(problems).toEqual([]);
  });

  it('sees every import into another layer go through that layer\'s index.ts, but for the named exceptions', () => {
    const problems: string[] = [];
    for (const e of edges) {
      if (isException(e)) continue;
      if (!e.literal) problems.push(`${describeEdge(e)}: a computed dynamic import cannot be checked against the layer table`);
      else if (e.to === undefined) problems.push(`${describeEdge(e)}, which is outside src/`);
      else if (!e.throughIndex) problems.push(`${describeEdge(e)}: reach into ${e.to} only through src/${e.to}index.ts`);
    }
    expect(problems).toEqual([]);
  });

  it('lists only allowances some file uses, so the table says what the code does', () => {
    const used = new Set(edges.filter((e) => e.to !== undefined && e.to !== e.from).map((e) => `${e.from} ${e.to}`));
    const problems = rows.flatMap((r) =>
      r.mayImport.filter((a) => !used.has(`${r.layer} ${a}`)).map((a) => `docs/design.md:${r.line}: no file in ${r.layer} imports ${a}; remove it from the row (or add the import that needs it)`),
    );
    expect(problems).toEqual([]);
  });

  it('has arrows that go one way (no cycle among the layers)', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (layer: string, path: string[]): void => {
      if (state.get(layer) === 'done') return;
      if (state.get(layer) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(layer)), layer].join(' -> '));
        return;
      }
      state.set(layer, 'visiting');
      for (const next of rowOf.get(layer)?.mayImport ?? []) visit(next, [...path, layer]);
      state.set(layer, 'done');
    };
    for (const r of rows) visit(r.layer, []);
    expect(cycles).toEqual([]);
  });

  it('keeps no exception that no longer matches an import', () => {
    const stale = EXCEPTIONS.filter((x) => !edges.some((e) => e.file === x.file && e.specifier === x.specifier && (!e.literal || e.to === undefined || !e.throughIndex)));
    expect(stale.map((x) => `${x.file} '${x.specifier}' is listed as an exception but is no longer imported so: remove it from EXCEPTIONS`)).toEqual([]);
  });

  it('finds every import a plain line-by-line reading finds (the scanner misses nothing)', () => {
    const problems: string[] = [];
    for (const path of sourceFiles(SRC)) {
      const source = readFileSync(path, 'utf8');
      const found = new Set(findImports(source).map((f) => f.specifier));
      for (const m of source.matchAll(/^(?:import\b|export\b|\})[^'"\n]*\bfrom\s+'([^']+)'/gm)) {
        if (!found.has(m[1]!)) problems.push(`${relative(ROOT, path)}: the scanner missed '${m[1]!}'`);
      }
    }
    expect(problems).toEqual([]);
    expect(edges.length).toBeGreaterThan(50);
  });
});
