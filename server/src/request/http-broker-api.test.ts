import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../broker/broker.ts';
import { MemoryBroker } from '../http/testing/memory-broker.ts';
import { defaultLimits } from '../limits.ts';
import { httpBrokerApiContract } from './http-broker-api.contract.ts';
import { RequestLayer } from './request-layer.ts';

httpBrokerApiContract('MemoryBroker (route test double)', async () => ({ api: new MemoryBroker(), close: async () => {} }));

httpBrokerApiContract('RequestLayer over the real Broker', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-contract-'));
  const broker = await Broker.open({ brokerId: 0, dataDir, host: '127.0.0.1', port: 0, autoCreateTopics: true, defaultPartitions: 1, flushIntervalMs: 0, limits: defaultLimits });
  return {
    api: new RequestLayer(broker),
    close: async () => {
      await broker.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
