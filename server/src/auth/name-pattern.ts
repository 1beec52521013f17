/**
 * Name patterns of grants: a literal name (`clicks`) or a glob where `*`
 * stands for any run of characters, including none and including dots
 * (`activity.*`, `*.errors`, `tenant-*.events`, `*`). There is no escape
 * and no other metacharacter; `*` is the only special character.
 *
 * Matching never uses a regular expression: a pattern is split once at its
 * stars; a name matches when it starts with the first piece, ends with the
 * last, and holds the middle pieces in order between them. Taking the
 * leftmost occurrence of each middle piece is optimal (any later occurrence
 * leaves less room for the rest), so there is no backtracking and a match
 * costs O(pattern length × name length) at worst, both bounded by AuthLimits.
 *
 * A `NamePatternSet` is compiled once per principal; literal names become
 * one Set lookup, `*` short-circuits, `prefix*` is one startsWith.
 */

/** One compiled pattern. */
type Compiled =
  | { kind: 'prefix'; prefix: string }
  | { kind: 'glob'; first: string; middle: readonly string[]; last: string; minLength: number };

/** Whether `name` matches the glob `pattern` (`*` = any run of characters). Compiles on each call; use NamePatternSet for repeated checks. */
export function matchesPattern(pattern: string, name: string): boolean {
  return NamePatternSet.compile([pattern]).matches(name);
}

/**
 * A compiled list of patterns; a name matches the set when it matches any pattern.
 *
 * @example
 * const set = NamePatternSet.compile(['activity.*', 'clicks']);
 * set.matches('activity.page-views'); // true
 * set.matches('clicks');              // true
 * set.matches('click');               // false
 */
export class NamePatternSet {
  /** The patterns as given, for display and audit. */
  readonly patterns: readonly string[];
  /** True when some pattern is `*` alone (or only stars): every name matches. */
  readonly matchesAll: boolean;
  private readonly literals: ReadonlySet<string>;
  private readonly compiled: readonly Compiled[];

  private constructor(patterns: readonly string[]) {
    this.patterns = Object.freeze([...patterns]);
    const literals = new Set<string>();
    const compiled: Compiled[] = [];
    let matchesAll = false;
    for (const pattern of patterns) {
      const pieces = pattern.split('*');
      if (pieces.length === 1) literals.add(pattern);
      else if (pieces.every((p) => p === '')) matchesAll = true;
      else compiled.push(compilePieces(pieces));
    }
    this.literals = literals;
    this.compiled = compiled;
    this.matchesAll = matchesAll;
  }

  /** Compiles patterns once. Validation (characters, lengths, counts) happens in the claims schema, before this. */
  static compile(patterns: readonly string[]): NamePatternSet {
    return new NamePatternSet(patterns);
  }

  static readonly empty: NamePatternSet = new NamePatternSet([]);

  get isEmpty(): boolean {
    return this.patterns.length === 0;
  }

  matches(name: string): boolean {
    if (this.matchesAll || this.literals.has(name)) return true;
    for (const c of this.compiled) {
      if (c.kind === 'prefix' ? name.startsWith(c.prefix) : matchesGlob(c, name)) return true;
    }
    return false;
  }
}

/** pieces = pattern.split('*'), at least two of them (at least one star), not all empty. */
function compilePieces(pieces: string[]): Compiled {
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  // NB: empty middle pieces come from `**` and match anywhere; dropping them changes nothing.
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  if (last === '' && middle.length === 0) return { kind: 'prefix', prefix: first };
  const minLength = first.length + last.length + middle.reduce((n, p) => n + p.length, 0);
  return { kind: 'glob', first, middle, last, minLength };
}

function matchesGlob(c: Extract<Compiled, { kind: 'glob' }>, name: string): boolean {
  if (name.length < c.minLength || !name.startsWith(c.first) || !name.endsWith(c.last)) return false;
  // Invariant: the middle pieces must fit in [position, end), between the first and last pieces.
  const end = name.length - c.last.length;
  let position = c.first.length;
  for (const piece of c.middle) {
    const at = name.indexOf(piece, position);
    if (at < 0 || at + piece.length > end) return false;
    position = at + piece.length;
  }
  return true;
}
