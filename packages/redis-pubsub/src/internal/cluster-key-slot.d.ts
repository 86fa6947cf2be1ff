// cluster-key-slot ships no types: the one function used here.
declare module "cluster-key-slot" {
  const calculateSlot: (key: string | Uint8Array) => number
  export default calculateSlot
}
