package org.tensorflow.lite;
public final class Interpreter implements AutoCloseable {
  public static class Options { public Options setNumThreads(int n) { return this; } public Options setUseXNNPACK(boolean use) { return this; } }
  public Interpreter(java.io.File modelFile, Options options) { }
  public Tensor getInputTensor(int i) { return null; }
  public Tensor getOutputTensor(int i) { return null; }
  public void run(Object input, Object output) { }
  @Override public void close() { }
}
