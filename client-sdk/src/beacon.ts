/** @runnel/client/beacon — opt-in page-exit flush: `createClient({ beacon: pageExitBeacon })`. */
export { installBeacon as pageExitBeacon, flushByBeacon, beaconUrl, RECORD_BATCH_CONTENT_TYPE, BEACON_BATCHES_PER_PARTITION } from './page-exit-beacon.ts';
export type { BeaconSource, BeaconIo } from './page-exit-beacon.ts';
