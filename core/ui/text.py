"""The page's own text: tab introductions, definitions, the banner. Notes computed from results are
core/serving/notes.py's. The numbers here are the paper's (He et al. 2016, Veit et al. 2016, Li et al.
2018, Balduzzi et al. 2017); our measured numbers are only ever formatted from data.
"""
from __future__ import annotations

from core.research import faithfulness, shattered

ABOUT = {  # each tab's longer explanation, in its "About this view" accordion
    "classify": "Both nets have the same layers and the same parameters; the residual one only adds each "
                "block's input to its output, y = F(x) + x. In the paper (Table 6, Fig. 6) that is the "
                "difference between ResNet-56 at 6.97% test error and a plain-56 that is worse than plain-20, "
                "on the training set too: the degradation problem. Each side shows its own measured error.",
    "explain": "Which pixels drive each net's score for the target class. Gradient methods (Saliency, "
               "SmoothGrad, Guided Backprop) are fast and noisy; Integrated Gradients and DeepLift satisfy "
               "completeness (attributions sum to the score change from the mean-colour baseline); Grad-CAM "
               "shows where a stage looks, at that stage's resolution; Occlusion measures it by masking.",
    "architecture": "Three stages of 3×3 convolutions on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters: "
                    "each time the map halves the filters double, so every block costs about the same FLOPs. "
                    "Plain and residual twins are identical in shape, parameters and FLOPs; option-A shortcuts "
                    "are parameter-free (option B adds 1×1 projections where the shape changes).",
    "gradient_flow": "The norm of the loss gradient at each conv layer and block output, from the last layer "
                     "back to the first, on a log axis. The identity path carries gradients back unchanged "
                     "(∂(F(x)+x)/∂x = ∂F/∂x + I); a plain net must pass them through every layer. With batch "
                     "statistics, as in training, a fresh deep plain net's gradients do not vanish here: they "
                     "grow by orders of magnitude towards the input, while the ResNet's stay level. That fits "
                     "the paper (Sec. 4.1): its BN plain nets had no vanishing gradients, and it calls "
                     "degradation an optimisation difficulty. Running statistics at init do not normalise, "
                     "so there the ResNet's sums blow up instead.",
    "results": "The paper's Table 6 beside ours. A deeper net that is worse on the **training** set "
               "shows degradation (the plain nets, Fig. 6); one that fits the training set as well but is "
               "worse on test is overfitting (the paper's ResNet-1202). Errors are single-view, in %; "
               "the table has both training errors: running over augmented batches (as in Fig. 6) and "
               "an eval pass over the clean training set.",
    "curves": "The paper's Fig. 6 from our histories: train error (running, augmented, as in Fig. 6: each "
              "point the mean over the augmented training batches since the previous point, in train mode) "
              "dashed and test error solid, against "
              "iterations, plain nets left, ResNets right. The lr drops at 32k and 48k iterations are the steps.",
    "layer_responses": "The paper's Fig. 7: the standard deviation of each 3×3 layer's output (after BN, before "
                       "ReLU or addition) over the 10,000 test images. The paper found residual responses "
                       "generally smaller than plain ones: residual functions are closer to zero.",
    "lesion": "Veit et al. (2016): delete one block and a ResNet barely notices, because its paths form an "
              "ensemble of shallower nets; a plain net has one path, and breaks.",
    "landscape": "Li et al. (2018): the loss along random filter-normalised directions around the trained "
                 "weights. Skip connections keep the surface smooth and convex-looking; without them deep nets "
                 "turn chaotic. The 1-D line is computed live on 32 test images; the 2-D grid was precomputed "
                 "on 500 training images.",
    "shattered": "Balduzzi et al. (2017), **as a proxy**: along a straight line between two images, the derivative "
                 "of a class logit, and its autocorrelation. In deep plain nets it decorrelates towards white "
                 "noise; residual nets keep it correlated. Balduzzi et al. measured something simpler: dy/dx of "
                 "fully connected nets with one scalar input, at initialisation, with its spectrum. Here the "
                 "nets are the paper's CIFAR convnets, the path runs through image space, trained nets are shown "
                 f"too, and nets at init take their BN statistics from {shattered.CALIBRATION_IMAGES} real CIFAR "
                 "test images. The contrast is theirs; the numbers are not comparable with theirs.",
    "faithfulness_study": "Which explanation to trust, plain vs residual. Each method's map of each test image "
                          "(for the net's own prediction) is scored by deletion and insertion (Petsiuk et al. "
                          "2018): remove, or reveal, the pixels in the map's order, most important first, and "
                          "watch the class probability. A faithful map makes it fall fast (low deletion AUC) and "
                          "rise fast (high insertion AUC). Bars are means with 95% bootstrap intervals. The random "
                          "order is each net's reference: the Δ column compares the nets with each method's AUC "
                          "taken against its own net's random order.",
    "corrupt": "Which net breaks first? Corrupt the upload as CIFAR-10-C does (Hendrycks & Dietterich 2019: "
               "noise, blur, weather and digital corruptions at five severities, with their published "
               "levels) and watch both predictions. The chart follows each net's confidence in its "
               "clean-image class from the clean image (0) to severity 5. Noise and the elastic warp are "
               "random: the same seed gives the same image.",
    "robustness": "CIFAR-10-C-style (generated here): the test images corrupted by this lab's implementation of "
                  "CIFAR-10-C's corruptions, at the published levels; not the official set, whose files are "
                  "used instead (the Source control) when they are in data/CIFAR-10-C. Errors are top-1, in %, "
                  "per corruption and severity; the mean corruption error (mCE) is their plain mean, "
                  "unnormalised.",
    "vgg_vs_resnet": "Why ResNet is cheaper than VGG, and why 3×3: the paper's 34-layer nets need 3.6 G "
                     "multiply-adds, 18% of VGG-19's 19.6 G. Two stacked 3×3 layers see 5×5 with 18C² "
                     "parameters against 25C² for one 5×5 layer, and add a nonlinearity.",
}


INTRO = {  # one or two sentences per tab: what a visitor should look at
    "classify": "Upload a photo (or pick an example) and press Classify: the two nets have the same layers and "
                "parameters, and only the residual one adds each block's input to its output, y = F(x) + x.",
    "explain": "Which pixels drive each net's decision. Compare where the two maps put their weight, then press "
               "'Score every method' to see which map is most faithful to each net.",
    "corrupt": "Which net breaks first? Pick a corruption and drag the severity: the chart follows each net's "
               "confidence in its clean-image class.",
    "architecture": "The same shapes, parameters and FLOPs in both nets, stage by stage; only the shortcut differs.",
    "gradient_flow": "Look at the slope: a fresh deep plain net's gradients change by orders of magnitude "
                     "from the last layer to the first, while the ResNet's stay level.",
    "results": "Look down the training error column, plain nets first: a deeper net that is worse on the "
               "training set itself shows the degradation problem (not overfitting). Then compare the ResNets.",
    "curves": "Fig. 6: dashed lines are training error, solid lines test error, plain nets left, ResNets right. "
              "In the paper, deeper plain nets sit higher and deeper ResNets lower: compare the order by depth.",
    "layer_responses": "Fig. 7: how strongly each layer responds. The paper found residual layers respond "
                       "more weakly than plain ones (residual functions close to zero): compare the two kinds.",
    "lesion": "Delete one block and compare how far each net's error rises: Veit et al. (2016) found a ResNet "
              "barely notices, and a plain net breaks.",
    "landscape": "The loss around the trained weights of one pair: Li et al. (2018) found skip connections keep "
                 "it a smooth bowl and deep plain nets rough. Compare the two surfaces.",
    "shattered": "The gradient along a line between two images: Balduzzi et al. (2017) found a deep plain net's "
                 "turns to noise (its autocorrelation falls fast) and a ResNet's stays smooth.",
    "faithfulness_study": "Which explanation method to trust, for each net: low deletion and high insertion "
                          "AUC mean a faithful map.",
    "robustness": "The error of both nets on corrupted test images, per corruption and severity, and how the "
                  "gap to the clean error grows with depth.",
    "vgg_vs_resnet": "Why ResNet-34 costs 18% of VGG-19's multiply-adds, and why stacks of 3×3 layers.",
}

GROUPS = ("Explore an image", "The paper's evidence")  # the two top-level tabs

BLOCK_DIAGRAM = """
```
 x ──► conv3×3 ─► BN ─► ReLU ─► conv3×3 ─► BN ──► (+) ─► ReLU ─► y = ReLU(F(x) + x)
 │                                                 ▲
 └───────────── identity shortcut (ResNet only) ───┘     plain net: y = ReLU(F(x))
```"""


def banner(shipped: list[str]) -> str:
    if not shipped:
        return ("## ⚠ No trained checkpoints found\nEvery model below runs on **freshly initialised "
                "weights**: predictions and attributions are meaningless until checkpoints are added "
                "to `checkpoints/`.")
    return "Trained checkpoints: " + ", ".join(f"`{n}`" for n in shipped)


FAITHFULNESS_DEFINITION = (
    "**Which map to trust?** Deletion: remove the image's pixels in the map's order, most important first, "
    f"{faithfulness.STEP} at a time, each set to the mean colour (the baseline IG, DeepLift and Occlusion use), "
    "and watch the class probability: a faithful map makes it fall fast, a low area under the curve (AUC). "
    "Insertion: reveal them in the same order on the mean-colour image: a faithful map makes it rise fast, "
    "a high AUC. The pixels are ranked by the map as shown (the Sign setting). The random order is the "
    "reference. The AUCs also depend on how confident each net is: compare each net with its own random "
    "order. Captum's infidelity (relative: 0 exact, 1 explains nothing) and sensitivity (how much the map "
    f"moves under tiny input noise) are optional: {faithfulness.INFIDELITY_SAMPLES} perturbed forwards and "
    f"{faithfulness.SENSITIVITY_SAMPLES} more attributions per method and net.")


FAITH_HEADERS = ["method", "model", "deletion AUC (lower is better)", "insertion AUC (higher is better)",
                 "infidelity (lower is better)", "sensitivity (lower is better)", "attribution ms"]
