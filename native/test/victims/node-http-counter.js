// An ordinary Node.js HTTP server with a worker_threads worker: every request is counted in a closure
// here and summed by the worker (10 per request), and answered "<hits> <worker total>"; each hit is
// logged on stdout. argv[2] is the workdir: the port goes to <workdir>/port, the pid to <workdir>/ready.
'use strict';
const http = require('http'); const fs = require('fs'); const path = require('path');
const { Worker } = require('worker_threads');
const workdir = process.argv[2];
let hits = 0;
const worker = new Worker(`const { parentPort } = require('worker_threads'); let total = 0; parentPort.on('message', (n) => { total += n; parentPort.postMessage(total); });`, { eval: true });
const pending = [];
worker.on('message', (t) => pending.shift()(t));
const server = http.createServer((req, res) => {
  hits++;
  const mine = hits;
  pending.push((total) => { res.end(`${mine} ${total}\n`); console.log(`hit ${mine}`); });
  worker.postMessage(10);
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(path.join(workdir, 'port'), String(server.address().port));
  fs.writeFileSync(path.join(workdir, '.ready.tmp'), String(process.pid));
  fs.renameSync(path.join(workdir, '.ready.tmp'), path.join(workdir, 'ready'));
});
