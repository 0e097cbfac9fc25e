package org.pytorch.executorch;
public class Module {
  public static Module load(String modelPath) { return null; }
  public int loadMethod(String methodName) { return 0; }
  public EValue[] forward(EValue... inputs) { return null; }
  public void destroy() { }
}
