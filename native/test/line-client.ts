/** A TCP line client for the server tests: connect to 127.0.0.1, send a line, await the reply line. */
import * as net from 'net';

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends one line and resolves with the reply line (without its newline). */
export function ask(sock: net.Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.includes('\n')) {
        sock.off('data', onData);
        resolve(got.trim());
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(line + '\n');
  });
}
