/** @runnel/client/message-port — a Transport over a MessagePort (a broker link hosted in another thread). */
export { messagePortTransport } from './message-port-transport.ts';
