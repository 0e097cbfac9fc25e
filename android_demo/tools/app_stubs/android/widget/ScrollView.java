package android.widget; public class ScrollView extends android.widget.FrameLayout { public ScrollView(android.content.Context c) { super(c); } }
