// The editor's tokenizer: lossless, and it tells SyncJS apart from plain identifiers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenize } from '../app/highlight.js';

const types = (source) => tokenize(source).filter((t) => t.type !== 'space').map((t) => `${t.type}:${t.text}`);

test('tokens concatenate back to the exact source, whatever it is', () => {
  const samples = [
    'var a = `x ${b + `y ${c}`} z`; // done\n',
    'if (HaltSignalReceived) break;\n/* unterminated',
    'var re = /[/]+\\//g.test("a\\"b"), n = 0x1F + 1e-3 + .5 + 10n;',
    "'unterminated\nnext line",
    '€ ünïcödé «quotes» \t\r\n',
    '',
  ];
  for (const source of samples) {
    assert.equal(tokenize(source).map((t) => t.text).join(''), source, JSON.stringify(source));
  }
});

test('SyncJS host names are globals, not after a dot', () => {
  assert.deepEqual(types('Log(Param("x"));'), ['global:Log', 'punct:(', 'global:Param', 'punct:(', 'string:"x"', 'punct:)', 'punct:)', 'punct:;']);
  assert.deepEqual(types('c.Log'), ['ident:c', 'punct:.', 'ident:Log']);
  assert.deepEqual(types('new SftpClient()')[1], 'global:SftpClient');
});

test('keywords, constants, numbers, comments and regular expressions are told apart', () => {
  assert.deepEqual(types('while (true) return null; // end'), [
    'keyword:while', 'punct:(', 'const:true', 'punct:)', 'keyword:return', 'const:null', 'punct:;', 'comment:// end',
  ]);
  assert.deepEqual(types('x = a / b / c'), ['ident:x', 'punct:=', 'ident:a', 'punct:/', 'ident:b', 'punct:/', 'ident:c']);
  assert.deepEqual(types('x = /a\\/b/gi;'), ['ident:x', 'punct:=', 'regex:/a\\/b/gi', 'punct:;']);
  assert.deepEqual(types('1.5e3'), ['number:1.5e3']);
});

test('a template literal resumes after its ${} expression', () => {
  assert.deepEqual(types('`a ${ {k: 1}.k } b`'), [
    'template:`a ${', 'punct:{', 'ident:k', 'punct::', 'number:1', 'punct:}', 'punct:.', 'ident:k', 'template:} b`',
  ]);
});
