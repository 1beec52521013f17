/**
 * docs/protocol.md must match the code: every frame row (kind, name, fields
 * in wire order) and every error-table row (code, name, retryable, status)
 * is generated here from FrameSchema/ErrorTable and looked up in the doc.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorTable } from './errors.ts';
import { FrameSchema, type FieldType } from './frame-schema.ts';
import { FrameKind, type FrameType } from './protocol.ts';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

function typeName(f: FieldType): string {
  if (typeof f === 'string') return f;
  if ('array' in f) return `array<${typeName(f.array)}>`;
  return `{ ${f.struct.map(([n, x]) => `${n}: ${typeName(x)}`).join(', ')} }`;
}

test('every frame layout is documented exactly', () => {
  for (const type of Object.keys(FrameSchema) as FrameType[]) {
    const fields = FrameSchema[type].map(([n, f]) => `${n} \`${typeName(f)}\``).join(', ');
    const row = `| ${FrameKind[type]} | \`${type}\` | ${fields} |`;
    assert.ok(doc.includes(row), `docs/protocol.md lacks or mis-states: ${row}`);
  }
});

test('every error code is documented with its retryable flag and HTTP status', () => {
  for (const [name, e] of Object.entries(ErrorTable)) {
    const row = `| ${e.code} | \`${name}\` | ${e.retryable ? 'yes' : 'no'} | ${e.status} |`;
    assert.ok(doc.includes(row), `docs/protocol.md lacks or mis-states: ${row}`);
  }
});
