// The pages' one stylesheet, embedded in the binary and inlined in each page: no CDN, no web
// fonts, nothing fetched from outside (an edge site's laptop may have no internet at all).
// Background and text colours are set, not left to the browser's default canvas: the status colours'
// contrast (WCAG AA, checked by test/browser) holds against known colours in either scheme.
export const STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#111;--bad:#b00020;--ok:#1b6e20;--muted:#555}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#e8e8e8;--bad:#ff6b7f;--ok:#6fd67a;--muted:#aaa}}
body{background:var(--bg);color:var(--fg);font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:0 1rem 2rem}
nav{display:flex;gap:1rem;align-items:baseline;border-bottom:1px solid #8884;padding:.6rem 0}
nav strong{margin-right:1rem}
a{color:inherit}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #8883;vertical-align:top}
th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:.6rem .8rem;border-radius:4px;margin:.8rem 0;font-weight:600}
.bad{color:var(--bad)}.ok{color:var(--ok)}
.banner.bad{border:2px solid var(--bad)}.banner.ok{border:1px solid var(--ok)}
.muted{color:var(--muted)}
code,pre{font-family:ui-monospace,monospace}
label{display:block;margin:.5rem 0 .2rem}
input{font:inherit;padding:.3rem;min-width:20rem}
button{font:inherit;padding:.3rem .8rem}
`;
