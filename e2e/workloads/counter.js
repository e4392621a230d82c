// The e2e workload: a Node.js HTTP server whose state is a counter in memory. It counts once a second and
// prints each value on stdout (the container runtime's pipe: `kubectl logs`), and serves it as JSON. After
// a restore, the count goes on from the value it had at checkpoint time; a fresh start would begin at 1.
'use strict';
const http = require('node:http');
const os = require('node:os');

let count = 0;
setInterval(() => {
  count += 1;
  console.log(`count=${count}`);
}, 1000);

http
  .createServer((req, res) => {
    if (req.url === '/ready') {
      res.end('ok\n');
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ count, pid: process.pid, hostname: os.hostname() })}\n`);
  })
  .listen(Number(process.env.PORT || 8080));
