// A small JavaScript tokenizer for the script editor: enough to colour SyncJS (keywords,
// strings, template literals, comments, numbers, regular expressions, the SyncJS host API)
// without any third-party code. It never fails: unknown characters become plain text.

const KEYWORDS = new Set(('break case catch class const continue debugger default delete do else export extends '
  + 'finally for function if import in instanceof let new of return static super switch this throw try typeof var '
  + 'void while with yield async await get set').split(' '));

const CONSTANTS = new Set('true false null undefined NaN Infinity'.split(' '));

/** Names of the SyncJS host API, coloured apart from ordinary identifiers. */
export const SYNCJS_GLOBALS = new Set((
  'Param Log Sleep Exit HaltSignalReceived WaitForHaltSignal GetSecret GetVFS LastError '
  + 'SftpClient FtpsClient FtpClient S3Client AzureClient GCSClient WebDAVClient LocalClient '
  + 'FsWatcher RemoteWatcher HttpCli SendMail '
  + 'LIST_ALL LIST_FILES LIST_DIRS EVT_CREATE EVT_WRITE EVT_REMOVE EVT_RENAME EVT_CHMOD '
  + 'TLS_MODE_NONE TLS_MODE_EXPLICIT TLS_MODE_IMPLICIT '
  + 'NeverOverwrite AlwaysOverwrite OverwriteIfDiffSize OverwriteIfNewer '
  + 'CopyFile MoveFile DelFile FileExists DirExists MakeDir MakeTempDir DelTree FindFiles FileInfo '
  + 'ReadTextFile WriteTextFile AppendTextFile ReadFileBytes WriteFileBytes '
  + 'HashFile HashString Zip Unzip TarGz UnTarGz PgpEncryptFile PgpDecryptFile PgpSignFile PgpVerifyFile '
  + 'FormatDate RunProgram Env console JSON Math Date'
).split(' '));

const IDENT_START = /[A-Za-z_$\u00c0-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u00c0-\uffff]/;
const NUMBER = /^(?:0[xX][0-9a-fA-F_]+n?|0[bB][01_]+n?|0[oO][0-7_]+n?|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?n?)/;
const PUNCT = /^(?:>>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|\?\?=|&&=|\|\|=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.|\+\+|--|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|\*\*|<<|>>|[{}()[\];,<>+\-*/%&|^!~?:=.@#])/;

/**
 * Split `source` into tokens `{type, text}` whose texts concatenate back to `source`.
 * Types: keyword, const, global, ident, number, string, template, comment, regex, punct,
 * space, text.
 */
export function tokenize(source) {
  const tokens = [];
  let i = 0;
  const n = source.length;
  // Whether a `/` here starts a regular expression (after an operator or keyword) rather
  // than dividing (after a value).
  let regexAllowed = true;
  // Brace depth of open `${` in template literals, so `}` resumes the template.
  const templateStack = [];
  let braceDepth = 0;
  const push = (type, text) => {
    if (text) tokens.push({ type, text });
  };

  const readTemplate = (start) => {
    // From just after ` or }, up to the closing ` or the next ${ (inclusive).
    let j = start;
    while (j < n) {
      const c = source[j];
      if (c === '\\') { j += 2; continue; }
      if (c === '`') { return { end: j + 1, opensExpr: false }; }
      if (c === '$' && source[j + 1] === '{') { return { end: j + 2, opensExpr: true }; }
      j += 1;
    }
    return { end: n, opensExpr: false };
  };

  while (i < n) {
    const c = source[i];
    const next = source[i + 1];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      let j = i + 1;
      while (j < n && /[ \t\r\n]/.test(source[j])) j += 1;
      push('space', source.slice(i, j));
      i = j;
      continue;
    }
    if (c === '/' && next === '/') {
      let j = source.indexOf('\n', i);
      if (j < 0) j = n;
      push('comment', source.slice(i, j));
      i = j;
      continue;
    }
    if (c === '/' && next === '*') {
      let j = source.indexOf('*/', i + 2);
      j = j < 0 ? n : j + 2;
      push('comment', source.slice(i, j));
      i = j;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && source[j] !== c && source[j] !== '\n') j += source[j] === '\\' ? 2 : 1;
      j = Math.min(n, j + 1);
      push('string', source.slice(i, j));
      i = j;
      regexAllowed = false;
      continue;
    }
    if (c === '`') {
      const { end, opensExpr } = readTemplate(i + 1);
      push('template', source.slice(i, end));
      i = end;
      if (opensExpr) { templateStack.push(braceDepth); braceDepth += 1; regexAllowed = true; } else regexAllowed = false;
      continue;
    }
    if (c === '}' && templateStack.length && templateStack[templateStack.length - 1] === braceDepth - 1) {
      templateStack.pop();
      braceDepth -= 1;
      const { end, opensExpr } = readTemplate(i + 1);
      push('template', source.slice(i, end));
      i = end;
      if (opensExpr) { templateStack.push(braceDepth); braceDepth += 1; regexAllowed = true; } else regexAllowed = false;
      continue;
    }
    if (c === '/' && regexAllowed) {
      let j = i + 1;
      let inClass = false;
      let closed = false;
      while (j < n && source[j] !== '\n') {
        const d = source[j];
        if (d === '\\') { j += 2; continue; }
        if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) { closed = true; j += 1; break; }
        j += 1;
      }
      if (closed) {
        while (j < n && /[a-z]/.test(source[j])) j += 1;
        push('regex', source.slice(i, j));
        i = j;
        regexAllowed = false;
        continue;
      }
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next || ''))) {
      const m = NUMBER.exec(source.slice(i, i + 64));
      const text = m ? m[0] : c;
      push('number', text);
      i += text.length;
      regexAllowed = false;
      continue;
    }
    if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < n && IDENT_PART.test(source[j])) j += 1;
      const word = source.slice(i, j);
      const prev = tokens.length ? tokens[tokens.length - 1] : null;
      const afterDot = prev && prev.type === 'punct' && (prev.text === '.' || prev.text === '?.');
      let type = 'ident';
      if (!afterDot && KEYWORDS.has(word)) type = 'keyword';
      else if (!afterDot && CONSTANTS.has(word)) type = 'const';
      else if (!afterDot && SYNCJS_GLOBALS.has(word)) type = 'global';
      push(type, word);
      i = j;
      regexAllowed = type === 'keyword' && !['this', 'super'].includes(word);
      continue;
    }
    const m = PUNCT.exec(source.slice(i, i + 4));
    if (m) {
      const p = m[0];
      if (p === '{' || p === '${') braceDepth += 1;
      else if (p === '}') braceDepth = Math.max(0, braceDepth - 1);
      push('punct', p);
      i += p.length;
      regexAllowed = !(p === ')' || p === ']' || p === '}' || p === '++' || p === '--');
      continue;
    }
    push('text', c);
    i += 1;
    regexAllowed = true;
  }
  return tokens;
}

/** Fill `target` with coloured spans for `source` (text nodes only: safe for any input). */
export function renderHighlighted(target, source) {
  const frag = document.createDocumentFragment();
  for (const token of tokenize(source)) {
    if (token.type === 'space' || token.type === 'ident' || token.type === 'text') {
      frag.appendChild(document.createTextNode(token.text));
    } else {
      const span = document.createElement('span');
      span.className = `tok-${token.type}`;
      span.textContent = token.text;
      frag.appendChild(span);
    }
  }
  // A trailing newline needs something after it to take up a line in <pre>.
  frag.appendChild(document.createTextNode('\n'));
  target.replaceChildren(frag);
}
