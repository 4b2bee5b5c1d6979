import { BLOCK_LAYOUT, type DType } from "../formats/tensor.js";

/** Elements per quantization block (1 for plain floats): partition boundaries must respect it. */
export function blockElems(dtype: DType): number {
  return BLOCK_LAYOUT[dtype].elems;
}
