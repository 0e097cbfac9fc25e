package android.view;
public class View {
  public static final int VISIBLE = 0, GONE = 8;
  public interface OnClickListener { void onClick(View v); }
  public View(android.content.Context c) { }
  public static int generateViewId() { return 0; }
  public void setId(int id) { }
  public void setTag(Object tag) { }
  public Object getTag() { return null; }
  public void setEnabled(boolean enabled) { }
  public void setVisibility(int visibility) { }
  public void setPadding(int left, int top, int right, int bottom) { }
  public void setBackgroundColor(int color) { }
  public void setContentDescription(CharSequence d) { }
  public void setOnClickListener(OnClickListener l) { }
  public final <T extends View> T findViewById(int id) { return null; }
}
