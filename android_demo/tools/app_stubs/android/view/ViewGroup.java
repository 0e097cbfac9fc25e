package android.view;
public abstract class ViewGroup extends View {
  public ViewGroup(android.content.Context c) { super(c); }
  public static class LayoutParams { public static final int MATCH_PARENT = -1, WRAP_CONTENT = -2; public LayoutParams(int w, int h) { } }
  public void addView(View child) { }
  public void addView(View child, LayoutParams params) { }
  public void removeAllViews() { }
}
