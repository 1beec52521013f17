/**
 * docs/configuration.md cannot drift from the code: every setting of
 * CONFIG_FIELDS (flag, variable, file key), every key of the config file's
 * `auth` object and every limit of LimitsSchema (with its default) has a row
 * there, and the limit tables name no limit that does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_FIELDS } from '../../server/src/config.ts';
import { AuthConfigSchema } from '../../server/src/auth/config.ts';
import { defaultLimits, LimitsSchema } from '../../server/src/limits.ts';

const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
/** Markdown table rows (`| a | b |`) as trimmed cells. */
const rowsOf = (text: string): string[][] => text.split('\n').filter((l) => l.startsWith('|'))
  .map((l) => l.trim().replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((c) => c.trim()));
/** The text from the `## title` / `### title` heading to the next heading of that level or higher. */
function section(title: string): string {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => /^#{2,3} /.test(l) && l.replace(/^#+ /, '') === title);
  assert.ok(start >= 0, `docs/configuration.md has no section "${title}"`);
  const level = lines[start].indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

test('every CONFIG_FIELDS setting has a row with its file key, flag and environment variable', () => {
  const rows = rowsOf(section('Settings'));
  const missing = CONFIG_FIELDS.filter((f) => !rows.some((r) => r[0] === `\`${f.key}\`` && r[1].includes(`\`${f.flag}\``) && r[2] === `\`${f.env}\``))
    .map((f) => `${f.key} (${f.flag}, ${f.env})`);
  assert.deepEqual(missing, [], 'settings missing from the Settings table of docs/configuration.md');
});

test('every key of the auth object has a row', () => {
  const rows = rowsOf(section('The `auth` object'));
  const missing = Object.keys(AuthConfigSchema.shape).filter((k) => !rows.some((r) => r[0] === `\`${k}\``));
  assert.deepEqual(missing, [], 'auth keys missing from docs/configuration.md');
});

test('every LimitsSchema key has a row with its default, and every row is a limit', () => {
  const rows = rowsOf(section('Limits')).filter((r) => /^`\w+`$/.test(r[0]));
  const documented = new Map(rows.map((r) => [r[0].slice(1, -1), r[1]]));
  const keys = Object.keys(LimitsSchema.shape) as (keyof typeof defaultLimits)[];
  const problems: string[] = [];
  for (const key of keys) {
    const cell = documented.get(key);
    if (cell === undefined) problems.push(`${key}: missing (default ${defaultLimits[key]})`);
    else if (cell.split(' ')[0] !== String(defaultLimits[key])) problems.push(`${key}: documented default '${cell}', code ${defaultLimits[key]}`);
  }
  for (const name of documented.keys()) if (!(name in LimitsSchema.shape)) problems.push(`${name}: documented but not in LimitsSchema`);
  assert.deepEqual(problems, [], 'limit tables of docs/configuration.md out of date');
});
