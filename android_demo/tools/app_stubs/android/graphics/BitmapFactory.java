package android.graphics;
public class BitmapFactory {
  public static class Options { public boolean inJustDecodeBounds; public int outWidth; public int outHeight;
    public Bitmap.Config inPreferredConfig; public boolean inPremultiplied; public boolean inScaled; }
  public static Bitmap decodeByteArray(byte[] data, int offset, int length, Options opts) { return null; }
}
