package android.widget;
public class TextView extends android.view.View {
  public TextView(android.content.Context c) { super(c); }
  public final void setText(CharSequence text) { }
  public void setTextSize(int unit, float size) { }
  public void setTypeface(android.graphics.Typeface tf) { }
  public void setTextColor(int color) { }
  public void setAllCaps(boolean allCaps) { }
  public final void setHint(CharSequence hint) { }
  public void setInputType(int type) { }
  public void setMinLines(int minLines) { }
  public CharSequence getText() { return null; }
}
