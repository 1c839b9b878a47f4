// The script editor: a <textarea> (so typing, selection, undo and screen readers work as
// in any text field) under a synchronised, highlighted <pre>, with line numbers, Tab
// indentation and a marker for the line a syntax error points at.

import { h } from './dom.js';
import { renderHighlighted } from './highlight.js';

const INDENT = '    ';
const LINE_HEIGHT = 20;
const PAD_TOP = 10;

/** A code editor for SyncJS. `editor.el` goes in the page. */
export class CodeEditor {
  constructor({ value = '', label = 'Script source', onChange = () => {} } = {}) {
    this.onChange = onChange;
    this.errorLine = 0;
    this.escaped = false;
    this.gutter = h('div', { class: 'editor-gutter', 'aria-hidden': 'true' });
    this.code = h('code');
    this.pre = h('pre', { 'aria-hidden': 'true' }, this.code);
    this.band = h('div', { class: 'error-band hidden', 'aria-hidden': 'true' });
    this.textarea = h('textarea', {
      spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', wrap: 'off',
      'aria-label': label, 'data-testid': 'editor-input', 'aria-describedby': 'editor-keys',
    });
    this.textarea.value = value;
    this.el = h('div', { class: 'editor' }, this.gutter, h('div', { class: 'editor-area' }, this.band, this.pre, this.textarea));
    this.textarea.addEventListener('input', () => {
      this.clearError();
      this.render();
      this.onChange(this.value);
    });
    this.textarea.addEventListener('scroll', () => this.syncScroll());
    this.textarea.addEventListener('keydown', (e) => this.onKey(e));
    this.render();
  }

  /** The source text. */
  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.clearError();
    this.render();
  }

  /** Focus the text. */
  focus() {
    this.textarea.focus();
  }

  render() {
    const text = this.textarea.value;
    renderHighlighted(this.code, text);
    const lines = text.split('\n').length;
    if (this.gutter.childElementCount !== lines || this.errorLine) {
      const frag = document.createDocumentFragment();
      for (let i = 1; i <= lines; i += 1) {
        const cell = document.createElement('div');
        cell.textContent = String(i);
        if (i === this.errorLine) cell.className = 'error-line';
        frag.appendChild(cell);
      }
      this.gutter.replaceChildren(frag);
    }
    this.syncScroll();
  }

  syncScroll() {
    const { scrollTop, scrollLeft } = this.textarea;
    this.pre.scrollTop = scrollTop;
    this.pre.scrollLeft = scrollLeft;
    this.gutter.scrollTop = scrollTop;
    if (this.errorLine) {
      // CSSOM (not a style attribute), which the strict CSP allows.
      this.band.style.transform = `translateY(${PAD_TOP + (this.errorLine - 1) * LINE_HEIGHT - scrollTop}px)`;
    }
  }

  /** Mark `line` (1-based) as the place of a syntax error and scroll it into view. */
  markError(line, column = 0) {
    if (!line || line < 1) return;
    this.errorLine = line;
    this.band.classList.remove('hidden');
    const lines = this.textarea.value.split('\n');
    const target = Math.min(line, lines.length);
    this.textarea.scrollTop = Math.max(0, (target - 4) * LINE_HEIGHT);
    this.render();
    // Put the caret at the error so the user can fix it at once.
    let offset = 0;
    for (let i = 0; i < target - 1; i += 1) offset += lines[i].length + 1;
    offset += Math.max(0, Math.min((column || 1) - 1, (lines[target - 1] || '').length));
    this.textarea.setSelectionRange(offset, offset);
  }

  /** Remove the error marker. */
  clearError() {
    if (!this.errorLine) return;
    this.errorLine = 0;
    this.band.classList.add('hidden');
    this.gutter.replaceChildren();
  }

  insert(text) {
    // execCommand keeps the browser's undo history; setRangeText is the fallback.
    if (!document.execCommand || !document.execCommand('insertText', false, text)) {
      const { selectionStart, selectionEnd } = this.textarea;
      this.textarea.setRangeText(text, selectionStart, selectionEnd, 'end');
      this.textarea.dispatchEvent(new Event('input'));
    }
  }

  onKey(e) {
    const ta = this.textarea;
    if (e.key === 'Escape') {
      // Esc then Tab leaves the editor: Tab must not trap keyboard users.
      this.escaped = true;
      return;
    }
    if (e.key === 'Tab' && !e.ctrlKey && !e.altKey && !e.metaKey) {
      if (this.escaped) {
        this.escaped = false;
        return;
      }
      e.preventDefault();
      const { selectionStart: start, selectionEnd: end, value } = ta;
      const lineStart = value.lastIndexOf('\n', start - 1) + 1;
      const multiLine = value.slice(start, end).includes('\n');
      if (!multiLine && !e.shiftKey) {
        this.insert(INDENT);
        return;
      }
      const blockEnd = end;
      const block = value.slice(lineStart, blockEnd);
      const lines = block.split('\n');
      const changed = lines.map((line) => {
        if (!e.shiftKey) return INDENT + line;
        const m = /^( {1,4}|\t)/.exec(line);
        return m ? line.slice(m[0].length) : line;
      }).join('\n');
      ta.setSelectionRange(lineStart, blockEnd);
      this.insert(changed);
      ta.setSelectionRange(lineStart, lineStart + changed.length);
      return;
    }
    this.escaped = false;
    if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && !e.shiftKey && !e.altKey) {
      const { selectionStart: start, value } = ta;
      const lineStart = value.lastIndexOf('\n', start - 1) + 1;
      const line = value.slice(lineStart, start);
      let indent = /^[ \t]*/.exec(line)[0];
      if (/[{[(]\s*$/.test(line)) indent += INDENT;
      e.preventDefault();
      this.insert(`\n${indent}`);
    }
  }
}
