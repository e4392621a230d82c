/** Runs the built `cryopod dump --check` (bin/cryopod.js) on a PID, as a user would: its exit code and output. */
import { execFile } from 'child_process';
import * as path from 'path';

const CLI = path.resolve(__dirname, '../../bin/cryopod.js');

export function cliCheck(pid: number, json: boolean): Promise<{ code: number; text: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'dump', '--check', '--pid', String(pid), ...(json ? ['--json'] : [])], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, text: stdout + stderr });
    });
  });
}
