"""`gankit augment-eval`: does synthetic data from a low-data conditional GAN help a classifier
more than classical augmentation does?

For each n (labelled real training images, n/K per class), a class-conditional GAN (preset
``cgan``) is trained on those n images only (``data.source=mnist@n``; a user's folder: the n
chosen images written to ``OUT/data/n{n}.npz``), and then a small CNN classifier with one fixed
recipe (`Recipe`) is trained on each arm:

1. ``real``: the n real images;
2. ``classical``: real + classical augmentation (`classical_augment`: shifts, small rotations,
   elastic distortion, Simard et al. 2003), applied on the fly to every real training image;
3. ``synth``: real + synthetic, ratio r x n synthetic images (r/K x n per class), for each r;
4. ``classical+synth``: 3 with classical augmentation of the real images (synthetic images are
   not augmented);
5. ``synth-only``: n synthetic images (n/K per class) and no real image: the Classification
   Accuracy Score (Ravuri & Vinyals 2019).

Test accuracy is on the held-out test set (MNIST's 10,000), mean and std over the classifier
seeds. The ratio reported for arms 3 and 4 is picked without the test set: the n images are
split, stratified, into train (1 - val_fraction) and validation parts; classifiers of arms 3/4
are trained on the train part (+ synthetic at r x its size) for every r and seed, and the r with
the best mean validation accuracy is chosen (ties: the smaller r). Every ratio is reported, the
chosen one marked. The GAN (one per n, seed `GAN_SEED`) is trained on all n images, so it has
seen the validation images: a caveat recorded in the JSON.

Arm 2 is the bar: the JSON says, per n, whether each synthetic arm's mean beats it.

The modules: `protocol` (arms, seeds, budgets: plain data), `classifier` (augmentation, CNN,
training, accuracy), `driver` (`augment_eval`, the experiment), `report` (summary, table, plot).
"""
