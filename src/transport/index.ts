export {
  Doorbell,
  RING_CAPACITY_BYTES_MAX,
  RING_CAPACITY_BYTES_MIN,
  RING_CONTROL_BYTES,
  RING_FRAME_HEADER_BYTES,
  RingConsumer,
  RingError,
  RingErrorCode,
  RingProducer,
  createRing,
  ringFrameBytesMax,
} from './ring.ts';
export type { RingProducerOptions, RingReservation } from './ring.ts';
