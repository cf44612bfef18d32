/**
 * (being written)
 * @module
 */
/** Linux capabilities (being written). */
export class Capability {}
