/**
 * Spawns `broker-child.ts` as a real process and waits for its port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const childScript = fileURLToPath(new URL('./broker-child.ts', import.meta.url));

export interface BrokerChild { process: ChildProcess; port: number; wsUrl: string; exited: Promise<number | null> }

export async function spawnBroker(dataDir: string, limits: Record<string, number> = {}, extraArgs: string[] = []): Promise<BrokerChild> {
  const child = spawn(process.execPath, [...extraArgs, '--import', 'tsx', childScript, dataDir, JSON.stringify(limits)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1' },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    void exited.then((code) => reject(new Error(`broker child exited with ${code} before listening`)));
  });
  return { process: child, port, wsUrl: `ws://127.0.0.1:${port}/v1/ws`, exited };
}
