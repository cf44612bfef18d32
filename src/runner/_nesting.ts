/**
 * How deep a script's brackets nest, found without parsing it: the runtime's own parser recurses
 * once per level, and Deno's overflows its stack (and aborts the whole process, exit 134) at a few
 * hundred parentheses or a thousand-odd brackets — `hako plan` on a spec file holding a 1500-deep
 * array literal died that way. A script nested deeper than {@link MAX_NESTING} is refused before it
 * is handed to the runtime, with an error naming where.
 *
 * The scan skips strings, template literals (following `${…}` inside them), comments and regular
 * expression literals (told from a division by what comes before the slash, as a tokenizer does).
 * @module
 */

/** The deepest bracket nesting a script may have: far beyond any real code, far below the parser's limit. */
export const MAX_NESTING = 200;

/** Where a script's nesting first goes past a limit. */
export interface TooDeep {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
}

/** Keywords after which a `/` starts a regular expression, not a division. */
const BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "instanceof",
  "case",
  "do",
  "else",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "yield",
  "await",
]);

/**
 * Where `source`'s brackets (`(`, `[`, `{` and template `${`) first nest deeper than `max`, or
 * undefined when they never do (pure; unbalanced or unterminated code is the runtime's to report).
 * @param source The script's text.
 * @param max The deepest nesting allowed (default {@link MAX_NESTING}).
 */
export function tooDeep(source: string, max: number = MAX_NESTING): TooDeep | undefined {
  // What each open level is: a bracket, or the `${` of a template literal.
  const stack: string[] = [];
  let i = 0;
  let last = ""; // the last significant character (or word) in code, for the regex-or-division choice
  const n = source.length;
  const at = (k: number): TooDeep => {
    let line = 1, column = 1;
    for (let j = 0; j < k; j++) {
      if (source.charCodeAt(j) === 10) line++, column = 1;
      else column++;
    }
    return { line, column };
  };
  /** Skips a template literal's text from `i` (just after "`" or "}"): returns at "`" closed or "${" opened. */
  const template = (): boolean => {
    while (i < n) {
      const ch = source[i]!;
      if (ch === "\\") i += 2;
      else if (ch === "`") {
        i++;
        return false;
      } else if (ch === "$" && source[i + 1] === "{") {
        i += 2;
        return true;
      } else i++;
    }
    return false;
  };
  while (i < n) {
    const ch = source[i]!;
    if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r") {
      i++;
      continue;
    }
    if (ch === "/" && source[i + 1] === "/") {
      while (i < n && source[i] !== "\n") i++;
      continue;
    }
    if (ch === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (ch === "'" || ch === '"') {
      i++;
      while (i < n && source[i] !== ch && source[i] !== "\n") i += source[i] === "\\" ? 2 : 1;
      i++;
      last = "a";
      continue;
    }
    if (ch === "`") {
      i++;
      if (template()) {
        stack.push("${");
        if (stack.length > max) return at(i - 2);
        last = "{";
      } else last = "a";
      continue;
    }
    if (ch === "/" && (last === "" || "(,=:[!&|?{};+-*%<>~^".includes(last) || BEFORE_REGEX.has(last))) {
      // A regular expression literal: to its closing slash (a newline first means it was not one).
      let j = i + 1, inClass = false;
      for (; j < n && source[j] !== "\n"; j++) {
        const c = source[j]!;
        if (c === "\\") j++;
        else if (c === "[") inClass = true;
        else if (c === "]") inClass = false;
        else if (c === "/" && !inClass) break;
      }
      if (j < n && source[j] === "/") {
        i = j + 1;
        last = "a";
        continue;
      }
    }
    if (ch === "(" || ch === "[" || ch === "{") {
      stack.push(ch);
      if (stack.length > max) return at(i);
      last = ch;
      i++;
      continue;
    }
    if (ch === ")" || ch === "]" || ch === "}") {
      const open = stack.pop();
      i++;
      if (open === "${" && template()) stack.push("${");
      last = open === "${" ? "a" : ch;
      continue;
    }
    if (/[A-Za-z0-9_$]/.test(ch)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(source[j]!)) j++;
      last = source.slice(i, j);
      // (a word that is not a keyword ends an expression: a slash after it divides)
      if (!BEFORE_REGEX.has(last)) last = "a";
      i = j;
      continue;
    }
    last = ch;
    i++;
  }
  return undefined;
}
