// Random edits of an HCL text (deletions, syntax pieces, duplicated runs, truncation, stray characters,
// swapped lines): the inputs of the config fuzz test and of the config benchmark's worst case.

export const PIECES = [
  "{",
  "}",
  "[",
  "]",
  "=",
  ",",
  ":",
  '"',
  "\\",
  "\\u",
  "$",
  "${",
  "%{",
  "#",
  "//",
  "/*",
  "*/",
  "<<EOF\n",
  "<<-EOF\n",
  "\nEOF\n",
  "\n",
  " ",
  "\t",
  "-",
  "1",
  "1e9",
  "0.5",
  "true",
  "null",
  "x",
  "region",
  '"east"',
  "é",
  "😀",
  "\r\n",
  "\uFEFF",
  "__proto__",
  "constructor",
];

export function mutate(src: string, rnd: () => number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  let s = src;
  const edits = 1 + pick(4);
  for (let e = 0; e < edits; e++) {
    const i = pick(s.length + 1);
    switch (pick(6)) {
      case 0: // delete a run
        s = s.slice(0, i) + s.slice(i + 1 + pick(20));
        break;
      case 1: // insert a syntax piece
        s = s.slice(0, i) + PIECES[pick(PIECES.length)]! + s.slice(i);
        break;
      case 2: {
        // duplicate a run elsewhere
        const j = pick(s.length + 1);
        s = s.slice(0, i) + s.slice(j, j + pick(60)) + s.slice(i);
        break;
      }
      case 3: // truncate
        s = s.slice(0, i);
        break;
      case 4: // replace one character with a random code unit
        s = s.slice(0, i) + String.fromCharCode(pick(128)) + s.slice(i + 1);
        break;
      default: {
        // swap two lines
        const lines = s.split("\n");
        const a = pick(lines.length);
        const b = pick(lines.length);
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        s = lines.join("\n");
      }
    }
  }
  return s;
}
