package android.graphics;
public final class Bitmap {
  public enum Config { ALPHA_8, RGB_565, ARGB_4444, ARGB_8888, RGBA_F16, HARDWARE, RGBA_1010102 }
  public final Config getConfig() { return null; }
  public Bitmap copy(Config config, boolean isMutable) { return null; }
  public void recycle() { }
  public final int getWidth() { return 0; }
  public final int getHeight() { return 0; }
  public final int getRowBytes() { return 0; }
  public void copyPixelsToBuffer(java.nio.Buffer dst) { }
  public static Bitmap createBitmap(int[] colors, int width, int height, Config config) { return null; }
}
