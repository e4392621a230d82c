// Preloaded (node --require) into a command whose peak memory a test bounds: when the process exits,
// however it exits, its VmHWM (peak resident set, /proc/self/status) is written to $CRYOPOD_PEAK_RSS_FILE.
'use strict';
const fs = require('fs');
const out = process.env.CRYOPOD_PEAK_RSS_FILE;
if (out) {
  process.on('exit', () => {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    fs.writeFileSync(out, m ? `${Number(m[1]) * 1024}\n` : 'none\n');
  });
}
