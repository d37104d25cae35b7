// PLACEHOLDER: replaced by the issue that implements `mnistc predict`.
export async function predict(..._args: unknown[]): Promise<number> {
  process.stderr.write("mnistc predict: not yet implemented\n");
  return 1;
}
