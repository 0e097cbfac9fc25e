package android.text; public interface InputType { int TYPE_CLASS_TEXT = 1; int TYPE_TEXT_FLAG_MULTI_LINE = 0x20000; }
