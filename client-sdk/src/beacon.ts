/** @runnel/client/beacon — opt-in page-exit flush: `createClient({ beacon: pageExitBeacon })`. */
export { installBeacon as pageExitBeacon, flushByBeacon, beaconUrl, RECORD_BATCH_CONTENT_TYPE } from './page-exit-beacon.ts';
export type { BeaconSource } from './page-exit-beacon.ts';
