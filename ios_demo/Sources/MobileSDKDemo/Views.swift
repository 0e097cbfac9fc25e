#if canImport(SwiftUI) && canImport(CoreML)
import MobileSDKCore
import PhotosUI
import SwiftUI

struct ContentView: View {
    @EnvironmentObject var model: DemoModel

    var body: some View {
        TabView {
            ClassifyView()
                .tabItem {
                    Label("Classify", systemImage: "tag")
                }
            SearchView()
                .tabItem {
                    Label("Search", systemImage: "magnifyingglass")
                }
            ModelView()
                .tabItem {
                    Label("Model", systemImage: "cpu")
                }
        }
        .overlay(alignment: .top) {
            if model.isLoading {
                ProgressView("Loading the model…")
                    .padding()
            }
        }
    }
}

/// A failure as a message (never a crash).
struct ErrorText: View {
    let message: String?

    var body: some View {
        if let message = message {
            Label(message, systemImage: "exclamationmark.triangle")
                .foregroundStyle(.red)
                .font(.callout)
                .textSelection(.enabled)
        }
    }
}

struct LatencyView: View {
    let latency: Latency

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            row("Decode", latency.decodeMs)
            row("Preprocess", latency.preprocessMs)
            row("Image tower", latency.imageMs)
            row("Text tower (per text)", latency.textMs)
        }
        .font(.caption)
    }

    private func row(_ name: String, _ ms: Double?) -> some View {
        HStack {
            Text(name)
            Spacer()
            Text(ms.map { String(format: "%.1f ms", $0) } ?? "-")
                .monospacedDigit()
        }
    }
}

struct ClassifyView: View {
    @EnvironmentObject var model: DemoModel
    @State private var pickerItem: PhotosPickerItem? = nil

    var body: some View {
        NavigationStack {
            Form {
                if let error = model.loadError {
                    Section {
                        ErrorText(message: error)
                    }
                }
                Section("Image") {
                    HStack {
                        PhotosPicker(selection: $pickerItem, matching: .images) {
                            Label("Pick a photo", systemImage: "photo.on.rectangle")
                        }
                        Spacer()
                        CameraButton()
                    }
                    if let preview = model.inputPreview {
                        HStack {
                            Image(decorative: preview, scale: 1)
                                .interpolation(.none)
                                .resizable()
                                .frame(width: 128, height: 128)
                            Text("What the model sees: the exact integer center crop and area resize.")
                                .font(.caption)
                                .foregroundStyle(.secondary)
                        }
                    }
                    ErrorText(message: model.classifyError)
                }
                if model.promptsAvailable && model.labelBankAvailable {
                    Section("Classes") {
                        Picker("Classes", selection: $model.useLabelBank) {
                            Text("Prompts").tag(false)
                            Text("Label bank").tag(true)
                        }
                        .pickerStyle(.segmented)
                    }
                }
                if model.usingLabelBank {
                    LabelBankSection()
                } else if model.promptsAvailable {
                    PromptsSection()
                }
                Section("Result") {
                    ForEach(model.results) { r in
                        HStack {
                            Text(r.label)
                            Spacer()
                            Text(String(format: "%.1f %%", r.probability * 100))
                                .monospacedDigit()
                            Text(String(format: "(%.2f)", r.score))
                                .font(.caption)
                                .foregroundStyle(.secondary)
                        }
                    }
                    LatencyView(latency: model.classifyLatency)
                }
            }
            .navigationTitle("Zero-shot")
        }
        .onChange(of: pickerItem) { _, item in
            guard let item = item else { return }
            Task {
                await model.classify(item: item)
            }
        }
        .onChange(of: model.useLabelBank) { _, _ in
            Task {
                await model.rescore()
            }
        }
    }
}

/// The export's label bank: its classes, embedded at export time (no text tower runs).
struct LabelBankSection: View {
    @EnvironmentObject var model: DemoModel

    var body: some View {
        Section("Label bank") {
            ForEach(model.bankClasses, id: \.self) { name in
                Text(name)
            }
            Text(model.bankNote)
                .font(.caption)
                .foregroundStyle(.secondary)
        }
    }
}

/// Editable labels and prompts, embedded by the text tower.
struct PromptsSection: View {
    @EnvironmentObject var model: DemoModel

    var body: some View {
        Section("Labels") {
            Picker("Task", selection: $model.taskName) {
                ForEach(model.taskNames, id: \.self) { name in
                    Text(name).tag(name)
                }
            }
            ForEach($model.rows) { $row in
                VStack(alignment: .leading) {
                    TextField("Label", text: $row.label)
                    TextField("Prompt", text: $row.prompt)
                        .font(.caption)
                        .foregroundStyle(.secondary)
                }
            }
            .onDelete { offsets in
                model.rows.remove(atOffsets: offsets)
            }
            HStack {
                Button("Add label") {
                    model.addLabel()
                }
                Spacer()
                Button("Reset") {
                    model.resetLabels()
                }
                Spacer()
                Button("Score again") {
                    Task {
                        await model.rescore()
                    }
                }
            }
            .buttonStyle(.borderless)
        }
    }
}

struct SearchView: View {
    @EnvironmentObject var model: DemoModel
    private let columns = [GridItem(.adaptive(minimum: 96))]

    var body: some View {
        NavigationStack {
            ScrollView {
                VStack(alignment: .leading, spacing: 12) {
                    HStack {
                        TextField("Describe an image", text: $model.query)
                            .textFieldStyle(.roundedBorder)
                            .onSubmit {
                                Task {
                                    await model.search()
                                }
                            }
                        Button("Search") {
                            Task {
                                await model.search()
                            }
                        }
                        .disabled(model.busy)
                    }
                    ErrorText(message: model.searchError ?? model.loadError)
                    LatencyView(latency: model.searchLatency)
                    LazyVGrid(columns: columns, spacing: 12) {
                        ForEach(Array(model.hits.enumerated()), id: \.element.id) { rank, hit in
                            VStack {
                                if let thumb = hit.thumbnail {
                                    Image(decorative: thumb, scale: 1)
                                        .resizable()
                                        .scaledToFit()
                                        .frame(width: 96, height: 96)
                                } else {
                                    Rectangle()
                                        .fill(.gray)
                                        .frame(width: 96, height: 96)
                                }
                                Text("#\(rank + 1)  \(String(format: "%.2f", hit.score))")
                                    .font(.caption)
                                Text(hit.name)
                                    .font(.caption2)
                                    .lineLimit(1)
                            }
                        }
                    }
                }
                .padding()
            }
            .navigationTitle("Search")
        }
    }
}

struct ModelView: View {
    @EnvironmentObject var model: DemoModel

    var body: some View {
        NavigationStack {
            List {
                ErrorText(message: model.loadError)
                ForEach(model.modelSummary) { row in
                    LabeledContent(row.name, value: row.value)
                }
                Section("Last classification") {
                    LatencyView(latency: model.classifyLatency)
                }
                Section("Last search") {
                    LatencyView(latency: model.searchLatency)
                }
            }
            .navigationTitle("Model")
        }
    }
}
#endif
